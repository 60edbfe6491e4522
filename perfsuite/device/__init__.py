"""What this machine is and what it can run: DeviceCaps and the machine key, hardware rules as
data, what the installed libraries accept (probe, support), and the versions recorded beside
each value.
"""
