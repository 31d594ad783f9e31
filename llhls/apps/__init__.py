"""Applications: the pieces wired together (packager + origin, player runs).

Like ``llhls/cli.py`` and ``llhls/lab/``, modules here sit at the top and may
import ``packager/`` and ``player/``; no core module of ``llhls/`` imports them.
"""
