"""The shape of the code base (issue #19): modules import downwards only (no import cycle), no source file grows past
600 lines, processing settings are built from what a user asked for in one function, and the dataset flags are
declared once. Read from the source text (`ast`), so a change that breaks one of these fails here, not in review."""

import ast
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
# Packages whose folder is not their import name (setup.py's package_dir).
PACKAGE_DIRS = {"eval": "omni_regressor.eval"}


def tracked_python_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*.py"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / line for line in listed.splitlines() if line]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    name = ".".join(parts)
    for folder, package in PACKAGE_DIRS.items():
        if name == folder or name.startswith(folder + "."):
            name = package + name[len(folder):]
    return name


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """The package's modules that `path` imports anywhere (top level or inside functions), except inside a module-level
    `__getattr__`: that is how a module keeps a former name importable, loaded only when asked for."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    compatibility = {id(node) for function in tree.body if isinstance(function, ast.FunctionDef)
                     and function.name == "__getattr__" for node in ast.walk(function)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in compatibility:
            continue
        if isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            candidates = [f"{base}.{alias.name}" for alias in node.names]
            candidates = [candidate for candidate in candidates if candidate in modules] or [base]
        else:
            continue
        for candidate in candidates:
            while candidate and candidate not in modules:
                candidate = candidate.rpartition(".")[0]
            if candidate and candidate != name:
                found.add(candidate)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = [path for path in tracked_python_files() if not path.relative_to(ROOT).parts[0] in ("tests", "docs")]
    modules = {module_name(path) for path in paths}
    return {module_name(path): imported_modules(path, modules) for path in paths}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_import_graph_sees_the_package_and_finds_a_cycle_when_there_is_one():
    graph = import_graph()
    assert "omni_regressor.settings" in graph["omni_regressor.run"]
    assert "omni_regressor.eval.metrics" in graph["omni_regressor.results"]  # through setup.py's package_dir
    assert cycles({**graph, "omni_regressor.settings": {*graph["omni_regressor.settings"], "omni_regressor.run"}})


def test_no_module_imports_itself_back_through_others():
    assert cycles(import_graph()) == []


def test_no_source_file_is_over_600_lines():
    long_files = {str(path.relative_to(ROOT)): count for path in tracked_python_files()
                  if (count := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long_files == {}


def package_sources():
    return [path for path in tracked_python_files() if path.relative_to(ROOT).parts[0] not in ("tests",)]


def test_processing_settings_are_built_from_user_values_in_one_function():
    """`ProcessingSettings.from_dict` (the constructor of settings from values) is called by the settings module only,
    besides the processing file that defines it and the saved-config readers of the Hub files."""
    callers = {str(path.relative_to(ROOT)) for path in package_sources()
               if "ProcessingSettings.from_dict(" in path.read_text(encoding="utf-8")}
    assert callers == {"omni_regressor/settings.py", "processing_omni_regressor.py"}
    settings_module = ast.parse((ROOT / "omni_regressor/settings.py").read_text(encoding="utf-8"))
    building = {node.name for node in ast.walk(settings_module) if isinstance(node, ast.FunctionDef)
                and "ProcessingSettings.from_dict({" in ast.unparse(node).replace("\n", "")}
    assert building == {"resolve_settings"}


def test_the_dataset_flags_are_declared_once():
    """`--dataset_dir`, `--dataset_format` and `--labels_csv` are fields of `DatasetArguments` only; every data command's
    arguments derive from it."""
    from omni_regressor.analyze import AnalyzeArguments
    from omni_regressor.arguments import DataArguments, DatasetArguments
    from omni_regressor.commands import CheckDataArguments
    from omni_regressor.eval.evaluation import EvaluateArguments
    from omni_regressor.experiments.zero_shot import ZeroShotArguments
    from omni_regressor.probe import ProbeArguments

    declared = {}
    for path in package_sources():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ClassDef):
                for statement in node.body:
                    if isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name) and \
                            statement.target.id in ("dataset_dir", "dataset_format", "labels_csv"):
                        declared.setdefault(statement.target.id, []).append(f"{path.relative_to(ROOT)}:{node.name}")
    assert declared == {name: ["omni_regressor/arguments.py:DatasetArguments"]
                        for name in ("dataset_dir", "dataset_format", "labels_csv")}
    for arguments in (DataArguments, EvaluateArguments, CheckDataArguments, AnalyzeArguments, ZeroShotArguments,
                      ProbeArguments):
        assert issubclass(arguments, DatasetArguments)


def test_former_module_names_still_import():
    """Names published before the restructuring keep working: the recipes under `omni_regressor.readouts`, the training
    flags under `omni_regressor.arguments`, the folder checks under `omni_regressor.inference`."""
    from omni_regressor import arguments, inference, model_loading, recipes, training_arguments
    from omni_regressor.readouts import READOUTS, get_readout
    from omni_regressor.readouts.generative import load_thinker

    assert READOUTS is recipes.RECIPES and type(get_readout("generative")) is recipes.GenerativeRecipe
    assert load_thinker is recipes.generative.load_thinker
    assert arguments.OmniTrainingArguments is training_arguments.OmniTrainingArguments
    assert inference.check_model_folder is model_loading.check_model_folder
