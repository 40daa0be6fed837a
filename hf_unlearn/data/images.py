"""Images made safe for a model's preprocessing: mode conversion, and errors that name the bad row.

Measured with transformers 5.23 / Pillow 13 (``ViTImageProcessor``): a 3-channel processor raises a broadcast
``RuntimeError`` on L, P, LA, RGBA, CMYK, I;16 and 1 images; a 1-channel processor passes RGB / RGBA / LA / CMYK
through as 3, 4, 2 and 4 channels (the model then fails, or mixes channels); a mode-"1" image becomes 0/1 pixel
values rescaled by 1/255 (all black); and a 16-bit image (mode I;16, as a 16-bit PNG decodes) is rescaled by 1/255
(values up to 257), while PIL's own ``convert("L")`` clips it to white. :func:`convert_image` therefore converts
every image to the model's channel count itself, following ``transformers.image_transforms.convert_to_rgb`` for
transparency (composited onto white), and refuses what has no defined 8-bit meaning.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["ImageDataError", "convert_image", "locate_bad_image", "processor_channels"]

_TARGET_MODE = {1: "L", 3: "RGB"}
_SIXTEEN_BIT = ("I;16", "I;16L", "I;16B", "I;16N")


class ImageDataError(ValueError):
    """An image of a dataset cannot be read or converted; the message names the split, row, id and file."""


def convert_image(image: Any, channels: int):
    """``image`` (a PIL image) as an 8-bit image with ``channels`` channels (1: "L", 3: "RGB").

    Transparency (RGBA, LA, PA, P or L with a transparent colour) is composited onto white, as transformers'
    ``convert_to_rgb`` does; 16-bit greyscale is scaled to 8 bits (65535 -> 255); palette, 1-bit, CMYK, YCbCr,
    LAB and HSV images are converted by PIL. 32-bit integer ("I") and float ("F") images have no fixed range and
    are refused, as are other channel counts. Raises ``ValueError``.
    """
    from PIL import Image

    if image is None:
        raise ValueError("the image is missing (None)")
    if not isinstance(image, Image.Image):
        raise ValueError(f"expected a PIL image, got {type(image).__name__}")
    target = _TARGET_MODE.get(channels)
    if target is None:
        if len(image.getbands()) == channels:
            return image
        raise ValueError(
            f"image mode {image.mode} has {len(image.getbands())} channels and the model expects "
            f"{channels}; hf-unlearn converts only to 1 (L) or 3 (RGB) channels: convert the images "
            "yourself"
        )
    if image.mode == target:
        return image
    if image.mode in _SIXTEEN_BIT:
        import numpy as np

        image = Image.fromarray((np.asarray(image, dtype=np.uint32) // 257).astype(np.uint8), mode="L")
        return image if target == "L" else image.convert(target)
    if image.mode in ("I", "F"):
        raise ValueError(
            f"image mode {image.mode} ({'32-bit integer' if image.mode == 'I' else 'float'} pixels) has "
            "no fixed value range, so it cannot be converted to 8 bits without guessing; convert the "
            f"images to '{target}' yourself with the scaling your data needs"
        )
    if "A" in image.getbands() or image.info.get("transparency") is not None:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert(target)


def processor_channels(processor: Any, config: Any = None) -> int:
    """Channels the model expects: ``config.num_channels``, else the length of the processor's ``image_mean``, else 3."""
    channels = getattr(config, "num_channels", None)
    if isinstance(channels, int) and channels > 0:
        return channels
    mean = getattr(processor, "image_mean", None)
    return len(mean) if isinstance(mean, (list, tuple)) else 3


def locate_bad_image(
    dataset,
    positions: Sequence[int],
    split: str,
    error: BaseException,
    *,
    image_column: str | None = None,
    id_column: str | None = "id",
    transform=None,
) -> str | None:
    """The one-line message naming the first row of ``positions`` whose image fails, or None if none does.

    ``dataset`` is the split as given (raw, or a ``with_transform`` view); each row is re-read alone, first from
    the stored bytes / path (without decoding), then through ``transform`` when given.
    """
    from PIL import Image

    raw = dataset.with_format("arrow")  # the stored {"bytes", "path"} structs, nothing decoded
    if image_column is None:
        import datasets

        image_column = next((c for c, f in dataset.features.items() if isinstance(f, datasets.Image)), None)
    if image_column is None or image_column not in raw.column_names:
        return None
    for pos in positions:
        pos = int(pos)
        row = raw[pos : pos + 1]
        value = row.column(image_column)[0].as_py()
        path = value.get("path") if isinstance(value, dict) else None
        reason = None
        if value is None or (isinstance(value, dict) and value.get("bytes") is None and not path):
            reason = "has no image (None)"
        elif isinstance(value, dict) and value.get("bytes") is None and not os.path.exists(path):
            reason = f"file {path} does not exist"
        else:
            try:
                source = io.BytesIO(value["bytes"]) if value.get("bytes") is not None else path
                with Image.open(source) as im:
                    im.load()
            except Image.UnidentifiedImageError:  # its message is an object repr: say what it means instead
                reason = "cannot be decoded (not an image format PIL recognises)"
            except Exception as e:
                reason = f"cannot be decoded ({type(e).__name__}: {_first_line(e)})"
        if reason is None and transform is not None:
            try:
                transform(dataset.with_format(None)[pos : pos + 1])
            except Exception as e:
                reason = f"cannot be used ({_first_line(e)})"
        if reason is None:
            continue
        ident = ""
        if id_column and id_column in raw.column_names:
            ident = f" (id {row.column(id_column)[0].as_py()!r})"
        where = f"; file {path}" if path and path not in reason else ""
        return (
            f"image of row {pos}{ident} in the {split} split {reason}{where}; fix or remove that row "
            f"(Dataset.filter) and rerun."
        )
    return None


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
