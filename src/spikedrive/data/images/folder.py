"""Class-per-folder image sets (ImageNet's ``train/`` and ``val/``) through torchvision's ImageFolder.

The only addition to ``torchvision.datasets.ImageFolder`` is the loader: a file PIL cannot
decode (corrupt, truncated, not an image) raises a ``ValueError`` naming the file, instead of
whatever PIL raises from deep inside a DataLoader worker.
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image
from torchvision.datasets import ImageFolder

from ..events.errors import CorruptFileError

__all__ = ["load_rgb", "load_image_folder"]


def load_rgb(path: str | os.PathLike[str]) -> Image.Image:
    """The image at ``path`` decoded fully and converted to RGB.

    Raises:
        CorruptFileError: (a ``ValueError``) when the file cannot be decoded, naming it.
    """
    try:
        with open(path, "rb") as f:
            img = Image.open(f)
            img.load()  # decode now, so a truncated file fails here and not in a transform
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise CorruptFileError(path, None, f"not a readable image ({type(err).__name__}: {err})") from err


def load_image_folder(folder: str | os.PathLike[str]) -> ImageFolder:
    """``ImageFolder(folder)`` with :func:`load_rgb` as loader, untransformed: items are
    ``(PIL.Image RGB, class index)``, classes sorted by folder name.

    Raises:
        ValueError: when ``folder`` has no class subfolder with an image in it, naming ``folder``.
    """
    try:
        return ImageFolder(str(Path(folder).expanduser()), loader=load_rgb)
    except FileNotFoundError as err:
        raise ValueError(f"{folder}: no class subfolders with images ({err})") from err
