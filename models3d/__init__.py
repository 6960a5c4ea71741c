"""From phone photogrammetry scans to light, correctly placed machine models and a factory scene.

``python -m models3d prepare SCAN --out MACHINE.glb`` cleans, levels, scales and decimates one scan;
``python -m models3d scene --site SITE.yaml --out factory.glb`` builds the factory floor with every
machine placed as the site file says. See ``docs/models3d.md``.
"""

from models3d.errors import ScanError

__all__ = ["ScanError"]
