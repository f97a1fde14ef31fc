"""Robot profiles, the safety layer, digital twins and hardware drivers. Implementation lands
with the robots issue."""
