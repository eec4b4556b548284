"""The roof: the command line, the one-machine launcher, doctor, the embedded broker, producers and benchmarks.

Nothing imports this package; it imports every other one.
"""
