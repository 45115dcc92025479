"""Prompt templates for the label-scoring methods (`instruct`, `zero-shot`).

A template is chosen by name or read from a file, then rendered once per tokenizer into a ``Prompt``:
the text goes where ``{text}`` is, and the rendered prompt ends exactly where the answer
(``POSITIVE`` / ``NEGATIVE``) begins, so training targets and label scoring see the same tokens.

- ``expert``: the instruction with rules from the Qwen3-4B project (reference 000), as the user turn;
- ``chat``: the system prompt of the Qwen2-1.5B project (reference 001) and the text as the user turn;
- ``plain``: ``Review: {text}`` / ``Sentiment:``, the Mistral-7B QLoRA project's format (reference 004),
  whose answers are ``Positive`` / ``Negative`` as there.

The two conversational templates go through the tokenizer's own chat template when it has one, and
otherwise through the literal ``<|im_start|>`` form reference 001 wrote by hand. ``plain`` and
templates from files are used as written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from jinja2 import TemplateError

from sentitune.artifact import LABELS
from sentitune.errors import SentituneError

EXPERT = """You are a sentiment analysis expert. Analyze the following text and classify it into EXACTLY ONE of these categories:

- POSITIVE
- NEGATIVE

IMPORTANT RULES:
1. Look for emotional words and tone
2. Consider the overall sentiment, not just individual words
3. When in doubt, choose the dominant sentiment
4. Respond with ONLY the category name, nothing else

Text to analyze: {text}"""
CHAT_SYSTEM = (
    "You are a sentiment analysis AI. Analyze the following text and classify the sentiment as positive or negative."
)
CHAT_USER = "Text to analyze: {text}"
PLAIN = "Review: {text}\nSentiment:"
# The default model (SmolLM2-135M-Instruct) reads `plain` best: 0.71 zero-shot on the bundled test
# split against ~0.51 for `expert` and `chat`; the large-model recipes name `expert` / `chat`.
DEFAULT_TEMPLATE = "plain"
# Stands in for the text while a chat template renders: nothing a template does touches it.
SLOT = "\ue000TEXT\ue000"


@dataclass(frozen=True)
class Template:
    spec: str  # what sentitune.json records: the name, or the template text itself for files
    user: str
    system: str | None = None
    conversation: bool = False
    words: tuple[str, str] = LABELS  # the answers for NEGATIVE, POSITIVE, as the template's source wrote them


TEMPLATES = {
    "expert": Template("expert", EXPERT, conversation=True),
    "chat": Template("chat", CHAT_USER, CHAT_SYSTEM, conversation=True),
    "plain": Template("plain", PLAIN, words=("Negative", "Positive")),  # "Sentiment: Positive" in reference 004
}


def load_template(spec: str | None) -> Template:
    """A template by name, a path to a template file, or template text (as artifacts store file templates)."""
    spec = spec or DEFAULT_TEMPLATE
    if spec in TEMPLATES:
        return TEMPLATES[spec]
    if "{text}" in spec:
        return Template(spec, spec)
    path = Path(spec)
    if not path.is_file():
        raise SentituneError(f"prompt template {spec!r} is not one of {', '.join(TEMPLATES)} nor a file")
    # An editor's final newline would otherwise move where the answer begins.
    text = path.read_text(encoding="utf-8").removesuffix("\n")
    if "{text}" not in text:
        raise SentituneError(f"prompt template file {path} has no {{text}} placeholder for the input text")
    return Template(text, text)


@dataclass(frozen=True)
class Prompt:
    """A template rendered for one tokenizer: ``render(text)``, then the answer (``lead`` + label)."""

    rendered: str  # with SLOT where the text goes
    words: tuple[str, str]
    lead: str  # " " when the prompt does not end in whitespace ("Sentiment:" -> " POSITIVE")
    add_special_tokens: bool  # False when a chat template already wrote BOS and friends

    def render(self, text: str) -> str:
        return self.rendered.replace(SLOT, text)

    @property
    def slots(self) -> int:
        return self.rendered.count(SLOT)

    @property
    def answers(self) -> tuple[str, str]:
        """NEGATIVE, POSITIVE as the model is trained to write them after the prompt."""
        return self.lead + self.words[0], self.lead + self.words[1]

    def spellings(self, label: int) -> list[str]:
        """The answer, then its other letter cases ("POSITIVE", "Positive", "positive")."""
        word = self.words[label]
        return [self.lead + w for w in dict.fromkeys((word, word.upper(), word.capitalize(), word.lower()))]


def _chat(tokenizer, messages: list[dict]) -> str:
    # enable_thinking=False: Qwen3 templates then close an empty <think></think> block themselves, so the
    # answer comes first; templates that do not know the variable ignore it.
    kwargs = dict(tokenize=False, add_generation_prompt=True, enable_thinking=False)
    try:
        return tokenizer.apply_chat_template(messages, **kwargs)
    except TemplateError as exc:  # some templates (Mistral's) refuse a system turn
        if messages[0]["role"] != "system":
            raise SentituneError(f"the model's chat template cannot render the prompt: {exc}") from None
        system, user = messages
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": f"{system['content']}\n\n{user['content']}"}], **kwargs
        )


def build_prompt(template: Template, tokenizer) -> Prompt:
    user = template.user.replace("{text}", SLOT)
    if not template.conversation:
        rendered, special = user, True
    else:
        messages = ([{"role": "system", "content": template.system}] if template.system else []) + [
            {"role": "user", "content": user}
        ]
        if tokenizer.chat_template:
            rendered, special = _chat(tokenizer, messages), False
        else:
            turns = "".join(f"<|im_start|>{m['role']}\n{m['content']}\n<|im_end|>\n" for m in messages)
            rendered, special = turns + "<|im_start|>assistant\n", True
    # After "Sentiment:" the answer is " POSITIVE"; after a newline it is "POSITIVE": the form the
    # tokenizer would produce in running text, which is what the model has seen.
    return Prompt(rendered, template.words, "" if rendered[-1:].isspace() else " ", special)
