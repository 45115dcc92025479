"""Request and response bodies of the API; FastAPI turns them into the OpenAPI spec at /docs.

The request bodies depend on the settings (text and batch limits), so ``request_models`` builds them
per app and the schema states exactly the limits that app enforces.
"""

import functools
import sys
import unicodedata
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Discriminator, Field, Tag

from sentitune.methods.base import INVISIBLE_CATEGORIES

Label = Literal["POSITIVE", "NEGATIVE"]


@functools.cache
def visible_pattern() -> str:
    """A regular expression matching one visible character (the server rejects a text without one).

    JSON Schema patterns are unanchored, so ``pattern`` says "contains a visible character"; built
    from the same rule as ``sentitune.methods.base.text_problem``.
    """
    ranges: list[list[int]] = []
    for cp in range(sys.maxunicode + 1):
        if 0xD800 <= cp < 0xE000:
            continue
        ch = chr(cp)
        if ch.isspace() or unicodedata.category(ch) in INVISIBLE_CATEGORIES:
            if ranges and ranges[-1][1] == cp - 1:
                ranges[-1][1] = cp
            else:
                ranges.append([cp, cp])

    def char(cp: int) -> str:  # \uXXXX reads the same in ECMA and Python regexes; astral ones as is
        return f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp)

    return "[^" + "".join(char(a) if a == b else f"{char(a)}-{char(b)}" for a, b in ranges) + "]"


@dataclass(frozen=True)
class RequestModels:
    analyze: type[BaseModel]
    batch: type[BaseModel]
    legacy: type[BaseModel]
    predict: type[BaseModel]


def text_type(max_text_chars: int) -> Any:
    return Annotated[
        str, Field(min_length=1, max_length=max_text_chars, json_schema_extra={"pattern": visible_pattern()})
    ]


def request_models(max_text_chars: int, max_batch_texts: int) -> RequestModels:
    """The request bodies with this server's limits declared (minLength/maxLength, minItems/maxItems)."""
    Text = text_type(max_text_chars)

    class AnalyzeRequest(BaseModel):
        # strict: a number or list where a string belongs is a 400, not silently str()-ed
        model_config = ConfigDict(strict=True, extra="forbid")

        text: Text = Field(description="The text to classify.", examples=["I absolutely love this product!"])
        include_reasoning: bool = Field(False, description="Ask for a short explanation (models that can give one).")

    class BatchRequest(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid")

        texts: list[Text] = Field(
            min_length=1, max_length=max_batch_texts, description="Texts to classify; results keep this order."
        )
        include_reasoning: bool = False

    class LegacyRequest(BaseModel):
        """The body of the older single-model API (``/analyze-sentiment``)."""

        model_config = ConfigDict(strict=True, extra="forbid")

        text: Text
        context: str = Field("", max_length=max_text_chars, description="Accepted and ignored.")

    return RequestModels(AnalyzeRequest, BatchRequest, LegacyRequest, predict_request(max_text_chars, max_batch_texts))


# the union's branch names, which pydantic puts into an error's location; errors.py leaves them out
INPUT_TAGS = ("str", "list[str]", "list[list[str]]")


def input_kind(value: Any) -> str:
    """Which branch of ``inputs`` a value is meant for, so a bad one gets that branch's error only."""
    if not isinstance(value, list):
        return "str"
    return "list[list[str]]" if value and isinstance(value[0], list) else "list[str]"


def predict_request(max_text_chars: int, max_batch_texts: int) -> type[BaseModel]:
    """text-embeddings-inference's ``/predict`` body, plus the ``parameters`` Hugging Face clients send."""
    Text = text_type(max_text_chars)
    Texts = Annotated[list[Text], Field(min_length=1, max_length=max_batch_texts)]
    # TEI's [[text], ...] batch form; a [text, text] pair is a cross-encoder input, which sentiment has not
    Nested = Annotated[list[Annotated[list[Text], Field(min_length=1, max_length=1)]],
                       Field(min_length=1, max_length=max_batch_texts)]
    Inputs = Annotated[
        Annotated[Text, Tag("str")] | Annotated[Texts, Tag("list[str]")] | Annotated[Nested, Tag("list[list[str]]")],
        Discriminator(input_kind),
    ]

    class PredictRequest(BaseModel):
        model_config = ConfigDict(strict=True, extra="forbid")

        inputs: Inputs = Field(description="A text, a list of texts, or TEI's batch form [[text], ...].")
        raw_scores: bool = Field(False, description="Scores are logits / temperature instead of calibrated probabilities.")
        truncate: bool = Field(
            True, description="A text over the token window of the model that reads it is read as that model reads "
            "long texts; false: it is a 400. A router holds each text to its own route's window (tfidf has none)."
        )
        parameters: ClassifyParameters | None = None

    return PredictRequest


def integral_float_to_int(value: Any) -> Any:
    # JSON Schema's "integer" includes 5.0; strict pydantic would refuse it
    return int(value) if isinstance(value, float) and value.is_integer() else value


PositiveWholeNumber = Annotated[int, Field(ge=1), BeforeValidator(integral_float_to_int)]


class ClassifyParameters(BaseModel):
    """The ``parameters`` of the Hugging Face Inference API's text classification."""

    model_config = ConfigDict(strict=True, extra="forbid")

    top_k: PositiveWholeNumber | None = Field(None, description="Only the k highest labels.")
    function_to_apply: Literal["softmax", "sigmoid", "none"] | None = Field(
        None, description="softmax: calibrated probabilities; none: logits / temperature; sigmoid: of those."
    )


class Prediction(BaseModel):
    label: Label
    score: float


class AnalyzeResult(BaseModel):
    text: str
    predicted_sentiment: Label
    confidence: float = Field(ge=0.0, le=1.0, description="Calibrated probability of the predicted label.")
    reasoning: str | None = None
    processing_time: float = Field(description="Seconds spent on this request.")


class BatchResponse(BaseModel):
    results: list[AnalyzeResult]
    total_processing_time: float


class LegacyResponse(BaseModel):
    text: str
    sentiment: Label
    confidence: float = Field(ge=0.0, le=1.0)


class ModelInfo(BaseModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str | None = None
    method: str | None = None
    version: str | None = None
    path: str | None = Field(None, description="Inference path chosen at load (precision) and why.")


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
