"""What edge agents, the twin server and integrators agree on (standard library only).

:mod:`twin_contract.vocabulary` is the one place that names reading kinds, task names, id
patterns, time bounds and the default device of a machine; every other module imports them.
"""
