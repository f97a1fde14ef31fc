"""Seeded fuzzing of every parser and input boundary (`make fuzz N=100000`).

Each target feeds generated inputs (hypothesis strategies, mostly mutations of real inputs) to
a real public entry point and checks an oracle beyond "no exception": only the documented
exception type escapes, and what is accepted is valid (a parsed packet re-packs to the same
bytes, safety outputs stay finite in [0, 1], a recovered bag decodes message for message).
"""
