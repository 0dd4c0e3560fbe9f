"""The few-shot completion prompt, for base models (no chat template) or on request.

The prompt is plain text, as a base model continues it::

    English: I would like a cup of tea, please.
    French: Je voudrais une tasse de thé, s'il vous plaît.

    English: …three more examples…

    English: The weather is very
    French:

The head is the examples and ``"English:"``, the source words follow with their leading
space, and the tail is ``"\\nFrench:"``; the translation is the continuation, which a line
break ends (`WaitKSettings.stop_at_newline`). The layout is a `PromptLayout`, so the exact
incremental KV edits and the naive oracle work on it as on the chat prompt.

The examples and the look of a partial source were chosen by measurement on a dev set
(benchmarks/translation_quality.py --choose, docs/translation.md). Language pairs without
examples here get the same layout with an instruction line instead of examples.
"""

from __future__ import annotations

EXAMPLES: dict[str, tuple[str, ...]] = {
    "English": (
        "I would like a cup of tea, please.",
        "Where is the train station?",
        "My friends are coming to dinner on Saturday.",
        "The weather was cold and rainy all week.",
        "She has been working at this company for three years.",
    ),
    "French": (
        "Je voudrais une tasse de thé, s'il vous plaît.",
        "Où est la gare ?",
        "Mes amis viennent dîner samedi.",
        "Il a fait froid et pluvieux toute la semaine.",
        "Elle travaille dans cette entreprise depuis trois ans.",
    ),
    "German": (
        "Ich hätte gern eine Tasse Tee, bitte.",
        "Wo ist der Bahnhof?",
        "Meine Freunde kommen am Samstag zum Abendessen.",
        "Das Wetter war die ganze Woche kalt und regnerisch.",
        "Sie arbeitet seit drei Jahren bei dieser Firma.",
    ),
    "Spanish": (
        "Quisiera una taza de té, por favor.",
        "¿Dónde está la estación de tren?",
        "Mis amigos vienen a cenar el sábado.",
        "Hizo frío y llovió toda la semana.",
        "Trabaja en esta empresa desde hace tres años.",
    ),
    "Italian": (
        "Vorrei una tazza di tè, per favore.",
        "Dov'è la stazione?",
        "I miei amici vengono a cena sabato.",
        "Ha fatto freddo e ha piovuto tutta la settimana.",
        "Lavora in questa azienda da tre anni.",
    ),
    "Portuguese": (
        "Eu gostaria de uma xícara de chá, por favor.",
        "Onde fica a estação de trem?",
        "Meus amigos vêm jantar no sábado.",
        "O tempo esteve frio e chuvoso a semana toda.",
        "Ela trabalha nesta empresa há três anos.",
    ),
}
"""The same five sentences in each language with examples (keyed by the English name)."""

SHOTS = 3
"""Examples in the prompt (measured: see the module docstring)."""


def _examples(language: str) -> tuple[str, ...] | None:
    for name, sentences in EXAMPLES.items():
        if name.casefold() == language.strip().casefold():
            return sentences
    return None


def few_shot_head(source_lang: str, target_lang: str, shots: int = SHOTS) -> str:
    """The prompt text before the source: the examples (or an instruction) and "<source>:"."""
    sources, targets = _examples(source_lang), _examples(target_lang)
    if sources is None or targets is None or shots <= 0:
        intro = f"Translate from {source_lang} to {target_lang}.\n\n"
    else:
        pairs = list(zip(sources, targets, strict=True))[:shots]
        intro = "".join(f"{source_lang}: {s}\n{target_lang}: {t}\n\n" for s, t in pairs)
    return f"{intro}{source_lang}:"
