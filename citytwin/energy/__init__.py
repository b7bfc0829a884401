"""Energy: building loads, PV, EV charging, power flow, outages and transformer aging."""
