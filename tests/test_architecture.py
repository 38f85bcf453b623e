"""The import rules of docs/architecture.md: layers import downwards only, light packages stay light."""

import ast
import os
import subprocess
import sys

import qgan

PACKAGE_ROOT = os.path.dirname(os.path.abspath(qgan.__file__))
# each sub-package may import those listed (and itself); guard and evaluation are reusable side packages
ALLOWED_IMPORTS = {
    "runtime": set(),
    "guard": set(),
    "evaluation": {"runtime"},
    "engines": {"runtime"},
    "models": {"runtime", "engines", "guard", "evaluation"},
    "training": {"runtime", "engines", "guard", "evaluation", "models"},
    "tune": {"runtime", "evaluation", "training"},
    "benchmarks": {"runtime", "engines", "guard", "evaluation", "models", "training"},
}


def loaded_modules(statement):
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(output.stdout.split())


def imported_subpackages(path):
    """The qgan sub-packages a module imports, at module level or inside functions."""
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            if node.module == "qgan":
                names += [f"qgan.{alias.name}" for alias in node.names]
    return {name.split(".")[1] for name in names if name.startswith("qgan.")}


def package_imports():
    graph = {}
    for package in sorted(os.listdir(PACKAGE_ROOT)):
        folder = os.path.join(PACKAGE_ROOT, package)
        if not os.path.isfile(os.path.join(folder, "__init__.py")):
            continue
        graph[package] = set()
        for name in os.listdir(folder):
            if name.endswith(".py"):
                graph[package] |= imported_subpackages(os.path.join(folder, name)) - {package}
    return graph


def test_the_top_level_holds_only_the_public_surface_and_sub_packages():
    modules = [name for name in os.listdir(PACKAGE_ROOT) if name.endswith(".py")]
    assert modules == ["__init__.py"]
    assert set(package_imports()) == set(ALLOWED_IMPORTS)


def test_each_sub_package_imports_only_the_layers_below_it():
    graph = package_imports()
    breaches = {package: sorted(imports - ALLOWED_IMPORTS[package]) for package, imports in graph.items()}
    assert not {package: names for package, names in breaches.items() if names}


def test_no_import_cycle_between_sub_packages():
    graph = package_imports()
    finished, on_path = set(), []

    def visit(package):
        if package in on_path:
            raise AssertionError(
                f"import cycle: {' -> '.join(on_path[on_path.index(package) :] + [package])}"
            )
        if package in finished:
            return
        on_path.append(package)
        for imported in sorted(graph.get(package, ())):
            visit(imported)
        on_path.pop()
        finished.add(package)

    for package in graph:
        visit(package)


def test_a_flipped_rule_is_caught(tmp_path):
    path = tmp_path / "module.py"
    path.write_text("def f():\n    from qgan.training.train import train\n    import qgan.models.gan\n")
    assert imported_subpackages(str(path)) == {"training", "models"}


def test_import_qgan_is_light_and_declares_its_public_surface():
    modules = loaded_modules("import qgan")
    assert "tensorflow" not in modules
    assert qgan.__all__ == sorted(
        ["TrainConfig", "train", "load_run", "train_main", "sample_main", "export_main", "tune_main"]
    )
    for name in qgan.__all__:
        assert callable(getattr(qgan, name)), name


def test_evaluation_and_config_import_neither_tensorflow_nor_strawberry_fields():
    modules = loaded_modules(
        "import qgan.evaluation.coverage, qgan.evaluation.targets, qgan.evaluation.plots, "
        "qgan.training.config, qgan.training.cli"
    )
    assert "tensorflow" not in modules
    assert "strawberryfields" not in modules


def test_guard_imports_nothing_gan_or_circuit_specific():
    modules = loaded_modules("import qgan.guard")
    assert not {name for name in modules if name.startswith(("qgan.models", "qgan.engines", "qgan.training"))}
    assert "strawberryfields" not in modules


def test_tune_knows_training_only_through_the_command_line():
    modules = loaded_modules("import qgan.tune.cli")
    assert not {"tensorflow", "keras", "strawberryfields", "qgan.training.train", "qgan.models.gan"} & modules


def test_docs_architecture_names_every_module():
    with open(
        os.path.join(os.path.dirname(PACKAGE_ROOT), "docs", "architecture.md"), encoding="utf-8"
    ) as handle:
        text = handle.read()
    missing = []
    for folder, _, names in os.walk(PACKAGE_ROOT):
        for name in names:
            if name.endswith(".py") and name != "__init__.py":
                module = name[:-3]
                stem = module.split("_")[0] + "_" if module.startswith("fock_") else module
                if stem not in text:
                    missing.append(os.path.relpath(os.path.join(folder, name), PACKAGE_ROOT))
    assert missing == []
