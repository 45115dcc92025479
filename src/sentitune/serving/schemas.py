"""Request and response bodies of the API; FastAPI turns them into the OpenAPI spec at /docs."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Label = Literal["POSITIVE", "NEGATIVE"]


class AnalyzeRequest(BaseModel):
    # strict: a number or list where a string belongs is a 400, not silently str()-ed
    model_config = ConfigDict(strict=True, extra="forbid")

    text: str = Field(description="The text to classify.", examples=["I absolutely love this product!"])
    include_reasoning: bool = Field(False, description="Ask for a short explanation (models that can give one).")


class AnalyzeResult(BaseModel):
    text: str
    predicted_sentiment: Label
    confidence: float = Field(ge=0.0, le=1.0, description="Calibrated probability of the predicted label.")
    reasoning: str | None = None
    processing_time: float = Field(description="Seconds spent on this request.")


class BatchRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    texts: list[str] = Field(description="Texts to classify; results keep this order.")
    include_reasoning: bool = False


class BatchResponse(BaseModel):
    results: list[AnalyzeResult]
    total_processing_time: float


class LegacyRequest(BaseModel):
    """The body of the older single-model API (``/analyze-sentiment``)."""

    model_config = ConfigDict(strict=True)

    text: str
    context: str = ""


class LegacyResponse(BaseModel):
    text: str
    sentiment: Label
    confidence: float = Field(ge=0.0, le=1.0)


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str | None = None
    method: str | None = None
    version: str | None = None


class HealthResponse(BaseModel):
    status: Literal["ok", "loading", "error"]
    model_loaded: bool
    gpu_available: bool
    memory_usage: dict[str, float]
    uptime: float
    model: ModelInfo
    detail: str | None = None


class ErrorBody(BaseModel):
    code: int
    type: str
    message: str
    request_id: str


class ErrorResponse(BaseModel):
    error: ErrorBody
