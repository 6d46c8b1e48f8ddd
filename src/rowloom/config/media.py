"""Image inputs for vision models (Data Designer's `ImageContext` field names)."""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

ImageFormat: TypeAlias = Literal["png", "jpg", "jpeg", "gif", "webp"]


class ImageContext(BaseModel):
    """Images from a column, sent with the prompt as OpenAI `image_url` content parts.

    The column may hold one value or a list (or a JSON list) of them; each is an http(s) URL, a
    `data:` URI, base64 image bytes, or a path to an image file (absolute, or relative to the run
    folder, then to the config's folder, then to the working directory). `data_type` forces
    `url` (sent as is) or `base64` (then `image_format` is required); unset, it is detected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    modality: Literal["image"] = "image"
    column_name: str = Field(min_length=1)
    data_type: Literal["url", "base64"] | None = None
    image_format: ImageFormat | None = None
    detail: Literal["auto", "low", "high"] | None = Field(
        None, description="OpenAI's image detail hint, passed through when set"
    )

    @model_validator(mode="after")
    def _format_for_base64(self) -> ImageContext:
        if self.data_type == "base64" and self.image_format is None:
            raise ValueError("image_format is required when data_type is base64")
        return self
