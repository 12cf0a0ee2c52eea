"""The help of ``%%experiment`` (what ``%%experiment?`` shows): every option and the inline syntax."""

EXPERIMENT_HELP = r"""Run the cell, a prompt template ($field / ${expr} from each case), as an experiment.

Rows are cases, columns model × params; the matrix fills in as runs finish and is saved,
with every run's record, in the output (re-executed with ELK_REPLAY=only it replays).
A re-run resumes: only missing runs are sent (failed ones too with --retry-failed).

Inline, with no variables prepared in another cell (the options are one line)::

    %%experiment -m m1,m2 -g temperature=0,1 --case country=France capital=Paris --case country=Peru capital=Lima --score 'icontains("$capital")' -o result
    What is the capital of $country? One word.

-m, --models M1,M2   model ids (repeatable, or comma-separated)
-g FIELD=V1,V2       a grid field (repeatable): values are JSON (0,0.7 · "a,b","c"), else
                     comma-separated text; a.b nests (response_format.type=json_object,text);
                     FIELD=@VAR takes a list variable
--grid VAR           a dict variable: request field -> list of values
-p KEY=VALUE         a fixed request field (the -p of %%chat: JSON, a.b, @VAR)
--cases VAR|PATH     a list of dicts, a DataFrame, or a .csv/.jsonl file
--case F=V [F=V ...] a one-off case (repeatable: one case each), added to --cases
--score EXPR         a scorer, a list of them, or a call evaluated in the notebook
                     ('icontains("$capital")', 'regex(r"^\d+$")', checks); the built-in
                     scorers need no import; repeatable
--repeats N          runs per cell (pass@k and pass^k over them)
--judge MODEL        the judge of rubric(...) scorers (default: the first model)
--prices VAR         model -> {"input": USD, "output": USD} per 1M tokens
--budget USD         refuse to start when the worst case costs more
--concurrency N      requests at once (default 4)
--endpoint chat|responses, -s SYSTEM, --name NAME, --replay MODE, --retry-failed,
-o NAME              store the ExperimentResult (result.compare(0, 1), .to_pandas(), ...)

All options: ``%%experiment --help``.
"""
