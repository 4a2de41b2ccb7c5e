"""`evolve evalset synthesize`: an evaluation set written by the LLM from raw documents; `evolve evalset review`: a
person accepts or rejects what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from agent.app import ProjectDir, app, console, fail
from agent.llm_session import BaseUrlOption, LocalModelOption, ModelOption, llm_client

evalset_app = typer.Typer(help="Evaluation sets: synthesize one from raw documents, and review what was written.",
                          no_args_is_help=True)
app.add_typer(evalset_app, name="evalset")


@evalset_app.command("synthesize")
def synthesize_command(
    corpus: Annotated[Path, typer.Option(help="Documents: a corpus folder `evolve ingest` keeps, or a corpus.jsonl "
                                              "(doc_id, title, text).")],
    out: Annotated[Optional[Path], typer.Option(help="Folder of the evaluation set; questions are added to the ones "
                                                     "it has. Default: the corpus folder itself, where the set "
                                                     "follows the corpus (required for a corpus.jsonl).")] = None,
    since: Annotated[Optional[str], typer.Option(help="Corpus version (`evolve ingest` prints it): write questions "
                                                      "only for documents new or changed since then.")] = None,
    n: Annotated[int, typer.Option(help="Passages to sample (one question each, before filtering).")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    no_answerability_check: Annotated[bool, typer.Option("--no-answerability-check",
                                                         help="Keep questions the judge finds unanswerable.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Synthesize with a model that failed the built-in checks "
                                                        "in the corpus's language.")] = False,
    prompt: Annotated[Optional[str], typer.Option(help="How the LLM is asked to write: question-first (the default: "
                                                       "a question and its short answer), cited-answer (then the "
                                                       "sentence that answers it, checked against the passage), "
                                                       "named-subject or evidence-first; measured in "
                                                       "bench/results/synth_acceptance.md.")] = None,
    base_url: BaseUrlOption = None, model: ModelOption = None, local_model: LocalModelOption = None,
    project_dir: ProjectDir = Path("."),
) -> None:
    """Ask the LLM to write questions (+ reference answers) for sampled passages; filter; write the layout.

    Document text goes only to the LLM named here (--llm-base-url, else a local llama.cpp server)."""
    from evalsets import DEFAULT_PROMPT, PROMPTS, EvalSetError, corpus_language, probe_writer, synthesize
    from evalsets.ingest import CorpusFolder
    from pipelines.llm import LLMUnavailable

    prompt = prompt or DEFAULT_PROMPT
    if prompt not in PROMPTS:
        fail(f"--prompt {prompt!r} is not one of {', '.join(sorted(PROMPTS))}")
    living = CorpusFolder(corpus) if corpus.is_dir() else None
    version = living.version() if living is not None else None
    if out is None:
        if living is None:
            fail("--out is required for a corpus.jsonl (a corpus folder keeps its questions itself)")
        out = corpus
    only = None
    try:
        if since is not None:
            if version is None:
                fail(f"{corpus} has no versions: --since needs a corpus folder that `evolve ingest` keeps")
            only = set(living.changed_since(since))
            console.print(f"{len(only)} documents new or changed since version {since} (now {version})")
        with llm_client(project_dir, base_url, model, local_model) as client:
            language = corpus_language(corpus)
            with console.status(f"trying {client.model} on built-in {language} items..."):
                probe = probe_writer(client, language, not no_answerability_check, prompt)
            if not probe.passed:
                line = (f"{client.model} failed {len(probe.misses)} built-in {language} check(s) "
                        f"({probe.misses[0]}); its questions would not be ones a person asks")
                if not force:
                    fail(f"{line}: use --local-model qwen2.5-coder-1.5b, or --llm-base-url of a larger model "
                         "(--force to synthesize anyway)")
                console.print(f"{line}; going on (--force)")
            report = synthesize(corpus, out, client, n, seed, not no_answerability_check, only, version,
                                progress=lambda done, total, outcome: console.print(
                                    f"  passage {done}/{total}: {outcome}"), prompt=prompt)
    except (EvalSetError, LLMUnavailable) as err:
        fail(str(err))
    console.print(f"{report.kept} questions kept of {report.sampled} passages ({report.invalid} invalid replies, "
                  f"{report.unanswerable} unanswerable; dropped by the checks: {report.checks_line()}) -> {out}")
    console.print(f"Read them before the loop trusts them: `evolve evalset review --set {out}` (a person accepted "
                  "about 60% of what Qwen2.5-Coder-1.5B kept on Korean pages; bench/results/synth_acceptance.md)")


@evalset_app.command("review")
def review_command(
    folder: Annotated[Path, typer.Option("--set", help="Folder of the evaluation set (a corpus folder, or the "
                                                       "--out of `evolve evalset synthesize`).")],
    reviewer: Annotated[str, typer.Option(help="Who gives the verdicts (recorded with each).")] = "",
    limit: Annotated[int, typer.Option(min=0, help="Review at most this many questions now (0: only the table of "
                                                   "what was accepted).")] = 1_000_000,
) -> None:
    """Read each synthesized question beside its passage and accept or reject it; rejected ones leave the set.

    Keys: y accept, n reject (then an optional reason), s skip, q quit. Every verdict is saved as it is given
    (reviews.jsonl in the set's folder), so quitting or a crash loses nothing; the next review goes on from there.
    At the end: the share accepted per writer model and prompt, with its 95% interval."""
    import getpass

    from rich.markup import escape

    from evalsets import (EvalSetError, acceptance, apply_rejections, passage_excerpt, pending, read_corpus,
                          record_verdict)

    if not (folder / "queries.jsonl").is_file():
        fail(f"{folder}: no queries.jsonl (synthesize questions first: `evolve evalset synthesize`)")
    try:
        taken_out = apply_rejections(folder)  # a verdict a crash left unapplied
        if taken_out:
            console.print(f"{taken_out} rejected questions taken out of the set (their verdicts were recorded)")
        todo = pending(folder)
        documents = {d.doc_id: d for d in read_corpus(folder / "corpus.jsonl")} if todo and limit else {}
    except EvalSetError as err:
        fail(str(err))
    reviewer = reviewer or getpass.getuser()
    if todo and limit:
        console.print(f"{len(todo)} synthesized questions to review in {folder}: y accept, n reject, s skip, q quit "
                      "(each verdict is saved as it is given)")
    done = 0
    for position, query in enumerate(todo[:limit], start=1):
        meta = query.get("metadata") or {}
        doc = documents.get(meta.get("source_doc", ""))
        answer = (query.get("answers") or [""])[0]
        console.rule(escape(f"{position}/{min(len(todo), limit)}  {query['query_id']}  {meta.get('generator', '')} "
                            f"({meta.get('writer_prompt', '')})"), align="left")
        if doc is not None:
            console.print(doc.title, style="dim", highlight=False, markup=False)
            console.print(passage_excerpt(doc.text, answer, meta.get("evidence", "")), highlight=False, markup=False)
        console.print(f"Q: {query['text']}\nA: {answer}", highlight=False, markup=False)
        try:
            key = typer.prompt("accept? y / n / s(kip) / q(uit)", default="s").strip().lower()[:1]
        except typer.Abort:
            break
        if key == "q":
            break
        if key not in ("y", "n"):
            continue
        reason = ""
        if key == "n":
            try:
                reason = typer.prompt("why (Enter: no reason)", default="", show_default=False)
            except typer.Abort:
                reason = ""
        try:
            record_verdict(folder, query, key == "y", reviewer, reason)
        except (OSError, EvalSetError) as err:
            fail(f"{folder}: the verdict on {query['query_id']} could not be saved ({err}); {done} saved before it")
        done += 1
    left = len(pending(folder))
    console.print(f"{done} verdicts given now; {left} synthesized questions left to review")
    rows = acceptance(folder)
    if rows:
        from rich.table import Table

        table = Table(title="accepted by a person, per writer", title_justify="left")
        for column in ("model", "prompt", "accepted", "share [95% Wilson]"):
            table.add_column(column)
        for row in rows:
            low, high = row.interval
            table.add_row(row.generator, row.writer_prompt or "-", f"{row.accepted}/{row.reviewed}",
                          f"{row.accepted / row.reviewed:.0%} [{low:.0%}, {high:.0%}]")
        console.print(table)
