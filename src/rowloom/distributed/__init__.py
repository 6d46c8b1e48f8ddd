"""The Ray engine: driver, worker actors, provider limit coordinators, share arithmetic.

Only `ray_engine.py` (and the modules it names) import `ray`; the share arithmetic
(`shares.py`), the coordinator logic (`coordinator.py`) and the simulated fleet
(`fleet_sim.py`) are plain Python, usable and tested without Ray.
"""
