"""The registry's model facts (engines.MODELS, one table): current or retired, reasoning, the
reasoning efforts each model takes, the parameters it rejects, context windows; the retirement
warning and the reasoning-effort message built from them; docs/grok.md agrees with the table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aiassistant_contract.engines import (
    BUILTIN,
    ENGINE_MODEL_GROK_3,
    ENGINE_MODEL_GROK_3_MINI,
    ENGINE_MODEL_GROK_4_3,
    MODELS,
    REASONING_EFFORTS,
    XAI_REASONING_REJECTS,
    ModelFacts,
    reasoning_effort_error,
    registry_from_env,
    retirement_warning,
)

ROOT = Path(__file__).resolve().parents[2]
XAI_RETIRED_ON_2026_05_15 = {  # docs.x.ai/developers/migration/may-15-retirement (text models)
    "grok-3",
    "grok-4-0709",
    "grok-4-fast-reasoning",
    "grok-4-fast-non-reasoning",
    "grok-4-1-fast-reasoning",
    "grok-4-1-fast-non-reasoning",
    "grok-code-fast-1",
}


def facts(engine_model: str) -> ModelFacts:
    return BUILTIN.parse(engine_model).facts


def test_one_row_per_model_and_every_row_served() -> None:
    names = [(m.target, m.name) for m in MODELS]
    assert len(names) == len(set(names))
    served = {f"{t.name}.{m}" for t in BUILTIN.targets.values() for m in t.models}
    assert {f"{t}.{n}" for t, n in names} == served


def test_the_seeds_models_stay_valid_and_grok_3_is_retired() -> None:
    assert BUILTIN.is_valid(ENGINE_MODEL_GROK_3) and BUILTIN.is_valid(ENGINE_MODEL_GROK_3_MINI)
    grok_3 = facts(ENGINE_MODEL_GROK_3)
    assert not grok_3.current and grok_3.retired is not None
    assert (grok_3.retired.date, grok_3.retired.replacement) == ("2026-05-15", "grok-4.3")
    assert facts(ENGINE_MODEL_GROK_3_MINI).current  # not in xAI's retirement list


def test_xai_retired_exactly_its_list_and_their_aliases() -> None:
    retired = {m.name for m in BUILTIN.target("grok").catalog if not m.current}
    assert retired == XAI_RETIRED_ON_2026_05_15 | {"grok-3-fast", "grok-4", "grok-4-fast"}
    for name in retired:
        row = facts(f"grok.{name}")
        assert row.retired is not None and row.retired.date == "2026-05-15"
        assert row.retired.replacement == "grok-4.3" and facts(f"grok.{row.retired.replacement}").current
        # The redirect serves reasoning models with low effort, the others with none.
        assert row.retired.effort == ("low" if row.reasoning else "none")
        assert row.retired.effort in facts("grok.grok-4.3").reasoning_efforts


def test_every_replacement_is_a_current_model_of_the_same_target() -> None:
    for row in MODELS:
        if row.retired is not None:
            assert BUILTIN.target(row.target).facts(row.retired.replacement).current, row


@pytest.mark.parametrize(
    ("engine_model", "reasoning", "efforts", "context_window"),
    [
        ("grok.grok-4.3", True, ("none", "low", "medium", "high"), 1_000_000),
        ("grok.grok-4.5", True, ("low", "medium", "high"), 500_000),
        ("grok.grok-4.6", True, ("low", "medium", "high", "xhigh"), 500_000),
        ("grok.grok-4.20-0309-reasoning", True, (), 1_000_000),
        ("grok.grok-4.20-0309-non-reasoning", False, (), 1_000_000),
        ("grok.grok-4.20-non-reasoning", False, (), 1_000_000),  # Pipecat 1.14's default model
        ("grok.grok-3-mini", True, ("low", "high"), 131_072),
        ("grok.grok-3", False, (), 131_072),
        ("grok.grok-4", True, (), 256_000),
        ("grok.grok-4-fast", True, (), 2_000_000),
        ("openai.gpt-4o", False, (), 128_000),
        ("openai.gpt-4o-mini", False, (), 128_000),
        ("openai.gpt-4.1", False, (), 1_047_576),
        ("openai.gpt-5", True, ("low", "medium", "high"), 400_000),  # and minimal, not a field value
        ("openai.gpt-5.2", True, ("none", "low", "medium", "high", "xhigh"), 400_000),
    ],
)
def test_model_facts(
    engine_model: str, reasoning: bool, efforts: tuple[str, ...], context_window: int
) -> None:
    row = facts(engine_model)
    assert row.facts_known
    assert row.reasoning is reasoning
    assert row.reasoning_efforts == efforts
    assert row.context_window == context_window
    assert ("reasoning_effort" in row.rejected_parameters) is (not efforts)


def test_gpt_5_also_takes_minimal_which_the_field_cannot_say() -> None:
    assert "minimal" in facts("openai.gpt-5").efforts
    assert "minimal" not in REASONING_EFFORTS


def test_reasoning_models_reject_the_penalties_and_stop() -> None:
    for row in MODELS:
        if row.reasoning:
            assert {"presence_penalty", "frequency_penalty", "stop"} <= row.rejected_parameters, row.name
        else:
            assert not {"presence_penalty", "frequency_penalty", "stop"} & row.rejected_parameters, row.name
    assert facts("grok.grok-4.3").rejected_parameters == XAI_REASONING_REJECTS
    assert {"temperature", "top_p", "max_tokens"} <= facts("openai.gpt-5").rejected_parameters


def test_aliases_have_the_facts_of_the_model_they_name() -> None:
    for row in MODELS:
        if row.alias_of:
            original = BUILTIN.target(row.target).facts(row.alias_of)
            assert original.alias_of is None
            assert (row.reasoning, row.efforts, row.rejects, row.context_window, row.retired) == (
                original.reasoning,
                original.efforts,
                original.rejects,
                original.context_window,
                original.retired,
            )


def test_extra_models_are_plain_current_non_reasoning_models() -> None:
    registry = registry_from_env({"AIASSISTANT_EXTRA_MODELS": "grok.grok-5,grok.grok-4.3"})
    row = registry.parse("grok.grok-5").facts
    assert (row.current, row.reasoning, row.efforts, row.facts_known) == (True, False, (), False)
    assert row.rejected_parameters == {"reasoning_effort"}
    assert registry.parse("grok.grok-4.3").facts == facts("grok.grok-4.3")  # a listed one keeps its facts
    assert BUILTIN.target("grok").facts("grok-5").facts_known is False  # unlisted: no facts either


def test_unknown_model_message_lists_current_models_then_retired_ones() -> None:
    with pytest.raises(ValueError, match="Unknown model 'grok-99'") as err:
        BUILTIN.parse("grok.grok-99")
    known, retired = str(err.value).split("; retired, still served: ")
    assert "grok-4.3" in known and "grok-3-mini" in known and "grok-4-0709" not in known
    assert "grok-3," in retired and "grok-4-0709" in retired


# --- the retirement warning --------------------------------------------------------------------


def test_retirement_warning_names_the_date_the_replacement_and_the_price() -> None:
    assert retirement_warning("grok.grok-4-fast") == (
        "grok-4-fast was retired by xAI on 2026-05-15; requests are served by grok-4.3 at its price: "
        "move to grok.grok-4.3"
    )
    # A model that did not reason is served without reasoning: the move says how to keep that.
    assert retirement_warning(ENGINE_MODEL_GROK_3, BUILTIN) == (
        "grok-3 was retired by xAI on 2026-05-15; requests are served by grok-4.3 at its price: "
        "move to grok.grok-4.3 with reasoningEffort: none (as the redirect serves it)"
    )
    assert retirement_warning("GROK:grok-code-fast-1", BUILTIN) is not None


@pytest.mark.parametrize(
    "engine_model",
    [ENGINE_MODEL_GROK_4_3, ENGINE_MODEL_GROK_3_MINI, "openai.gpt-4o", "grok.grok-99", "nope", "x.y"],
)
def test_no_warning_for_current_unknown_or_malformed_models(engine_model: str) -> None:
    assert retirement_warning(engine_model) is None


def test_the_warning_uses_the_registry_given() -> None:
    registry = registry_from_env({"AIASSISTANT_EXTRA_MODELS": "grok.grok-5"})
    assert retirement_warning("grok.grok-5", registry) is None
    assert retirement_warning("grok.grok-3", registry) == retirement_warning("grok.grok-3")


# --- the reasoning-effort message --------------------------------------------------------------


@pytest.mark.parametrize(
    ("engine_model", "effort", "message"),
    [
        (
            "grok.grok-4.3",
            "xhigh",
            "'xhigh' is not accepted by grok.grok-4.3 (it takes none, low, medium, high)",
        ),
        ("grok.grok-4.5", "none", "'none' is not accepted by grok.grok-4.5 (it takes low, medium, high)"),
        ("grok.grok-3-mini", "medium", "'medium' is not accepted by grok.grok-3-mini (it takes low, high)"),
        ("openai.gpt-5", "none", "'none' is not accepted by openai.gpt-5 (it takes low, medium, high)"),
        (
            "grok.grok-4.20-0309-non-reasoning",
            "low",
            "'low' is not accepted by grok.grok-4.20-0309-non-reasoning (it is not a reasoning model and "
            "takes no reasoning effort: omit reasoningEffort)",
        ),
        (
            "grok.grok-4.20-0309-reasoning",
            "high",
            "'high' is not accepted by grok.grok-4.20-0309-reasoning (xAI sets this model's reasoning "
            "itself and rejects a reasoning effort: omit reasoningEffort)",
        ),
        (
            "grok.grok-3",
            "none",
            "'none' is not accepted by grok.grok-3 (it is not a reasoning model and takes no reasoning "
            "effort: omit reasoningEffort); grok-3 is retired: move to grok.grok-4.3, which takes none, "
            "low, medium, high",
        ),
    ],
)
def test_reasoning_effort_error_names_the_values_the_model_takes(
    engine_model: str, effort: str, message: str
) -> None:
    assert reasoning_effort_error(BUILTIN.parse(engine_model), effort) == message


def test_every_effort_a_model_takes_is_fine_and_unset_always_is() -> None:
    for row in MODELS:
        engine = BUILTIN.parse(f"{row.target}.{row.name}")
        assert reasoning_effort_error(engine, None) is None
        for effort in REASONING_EFFORTS:
            assert (reasoning_effort_error(engine, effort) is None) is (effort in row.efforts), (row, effort)


# --- docs/grok.md is the table ----------------------------------------------------------------


def test_grok_page_lists_every_grok_model_with_its_efforts() -> None:
    page = (ROOT / "docs" / "grok.md").read_text()
    rows = {m.group(1): m.group(0) for m in re.finditer(r"^\| `([^`]+)`.*$", page, flags=re.MULTILINE)}
    for row in BUILTIN.target("grok").catalog:
        if row.current and row.alias_of is None:
            assert row.name in rows, f"docs/grok.md lacks {row.name}"
            for effort in row.reasoning_efforts:
                assert f"`{effort}`" in rows[row.name], (row.name, effort)
            assert f"{row.context_window:,}" in rows[row.name], row.name
        else:
            assert f"`{row.name}`" in page, f"docs/grok.md does not mention {row.name}"
    assert "2026-05-15" in page and "ModelRetired" in page
