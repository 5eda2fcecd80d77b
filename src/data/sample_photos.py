"""The embedded default data set: colour photographs that ship inside the scikit-image wheel.

No download is needed: the files live in ``skimage/data/`` of the installed package. They are small and
varied (faces, animals, machines, astronomy, microscopy) and enough to show a trained model beating bicubic.
"""

from __future__ import annotations

from pathlib import Path

# name -> file inside skimage/data
SAMPLE_PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",  # 512x512
    "chelsea": "chelsea.png",  # 300x451
    "coffee": "coffee.png",  # 400x600
    "rocket": "rocket.jpg",  # 427x640
    "motorcycle_left": "motorcycle_left.png",  # 500x741
    "motorcycle_right": "motorcycle_right.png",  # 500x741
    "hubble_deep_field": "hubble_deep_field.jpg",  # 872x1000
    "retina": "retina.jpg",  # 1411x1411
    "ihc": "ihc.png",  # 512x512, immunohistochemistry
    "color": "color.png",  # 370x371, colour wheel (synthetic)
}


def sample_photo_dir() -> Path:
    """Folder of scikit-image's bundled data files."""
    import skimage

    return Path(skimage.__file__).parent / "data"


def sample_photo_paths(names: list[str]) -> list[Path]:
    """Paths of the named photos; an unknown name or a missing file is an error naming the choices."""
    folder = sample_photo_dir()
    paths = []
    for name in names:
        if name not in SAMPLE_PHOTOS:
            raise ValueError(
                f"unknown sample photo {name!r} in data.train_photos/val_photos; "
                f"valid names: {', '.join(sorted(SAMPLE_PHOTOS))}"
            )
        path = folder / SAMPLE_PHOTOS[name]
        if not path.is_file():
            raise FileNotFoundError(
                f"sample photo {name!r} is missing: expected {path} (shipped in the scikit-image wheel; "
                f"reinstall scikit-image)"
            )
        paths.append(path)
    return paths
