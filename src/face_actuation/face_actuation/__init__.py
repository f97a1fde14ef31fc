"""Robot profiles, the safety layer, digital twins and hardware drivers, and the actuation
node that puts them between the retargeting model and a robot."""
