"""Every config field exists because the code that consumes its config reads it.

A field `C.f` counts as read only where code outside the config modules (and
outside tests) reads the attribute `f` of an expression that holds a `C`:

- a parameter, variable or `self` attribute annotated with `C` or a config
  base class of `C` (`data: DataConfig`), or assigned from such an expression;
- a config-valued field of such an expression (`params.task.model.backbone`
  holds a `BackboneConfig`), `.copy()` of one, or the return value of a
  function annotated to return one (`load_experiment_config(...)`);
- a loop variable over a tuple or list of such expressions;
- an unannotated parameter with the name of a parameter annotated with `C`
  elsewhere, or named after a field that holds a `C` (`trainer_config` for
  `ExperimentConfig.trainer`) or after the class (`trainer_config`).

So `op.type` or `layer.seed` is not a read of `BackboneConfig.type` or
`RuntimeConfig.seed`; `model_config.backbone.type` is. Writes (`data.seed = 1`)
are not reads.
"""

import ast
import dataclasses
import pathlib
import sys

from official.base.config import Config
from official.core import exp_factory
from official.vision.configs.image_classification import (
    BackboneConfig,
    ImageClassificationModelConfig,
)

ROOT = pathlib.Path(__file__).resolve().parents[2]
CONSUMERS = ("official", "serving")
SKIPPED = ("official/testing",)  # test helpers


@dataclasses.dataclass
class ConfigTree:
    """The config classes of every registered experiment and how they nest."""

    fields: dict  # class -> its field names
    children: dict  # (class, field) -> classes found in that field
    by_name: dict  # class name -> classes it annotates (itself and subclasses)

    @classmethod
    def of_experiments(cls):
        tree = cls({}, {}, {})
        for name, _ in exp_factory.describe_experiments():
            tree.add(exp_factory.get_exp_config(name))
        return tree

    def add(self, config):
        kind = type(config)
        self.fields[kind] = [f.name for f in dataclasses.fields(config)]
        for base in kind.__mro__:
            if issubclass(base, Config) and base is not Config:
                self.by_name.setdefault(base.__name__, set()).add(kind)
        for field in dataclasses.fields(config):
            value = getattr(config, field.name)
            if isinstance(value, Config):
                self.children.setdefault((kind, field.name), set()).add(type(value))
                self.add(value)

    def modules(self):
        """The files that declare the config classes and their config bases."""
        names = {
            base.__module__
            for kind in self.fields
            for base in kind.__mro__
            if issubclass(base, Config)
        }
        modules = [sys.modules.get(name) for name in names]
        return {pathlib.Path(m.__file__).resolve() for m in modules if m is not None}


def _annotation_names(node):
    if node is None:
        return set()
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        try:
            return _annotation_names(ast.parse(node.value, mode="eval").body)
        except SyntaxError:
            return set()
    if isinstance(node, ast.Name):
        return {node.id}
    if isinstance(node, ast.Attribute):
        return {node.attr}
    if isinstance(node, ast.BinOp):  # X | None
        return _annotation_names(node.left) | _annotation_names(node.right)
    if isinstance(node, ast.Subscript):  # Optional[X], list[X]: only Optional
        if _annotation_names(node.value) & {"Optional", "Union"}:
            inner = node.slice
            items = inner.elts if isinstance(inner, ast.Tuple) else [inner]
            return set().union(*(_annotation_names(item) for item in items))
    return set()


class Reads:
    """The `(class, field)` pairs that the modules given to `scan` read."""

    def __init__(self, tree: ConfigTree):
        self.tree = tree
        # parameter name -> classes it names when it has no annotation
        self.hints = {}
        for (_, field), kinds in tree.children.items():
            self.hints.setdefault(f"{field}_config", set()).update(kinds)
        for name, kinds in tree.by_name.items():
            self.hints.setdefault(_snake_case(name), set()).update(kinds)
        self.returns = {}  # function name -> classes it is annotated to return
        self.self_attrs = {}  # class name -> {attribute: classes}
        self.bases = {}  # class name -> base class names
        self.reads = set()

    def classes(self, annotation):
        names = _annotation_names(annotation)
        return set().union(*(self.tree.by_name.get(n, set()) for n in names))

    def scan(self, modules):
        """`modules`: parsed ASTs. Two passes: declarations, then reads."""
        for module in modules:
            for node in ast.walk(module):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    kinds = self.classes(node.returns)
                    if kinds:
                        self.returns.setdefault(node.name, set()).update(kinds)
                    for arg in _arguments(node):
                        kinds = self.classes(arg.annotation)
                        if kinds:
                            self.hints.setdefault(arg.arg, set()).update(kinds)
        for _ in range(2):  # `self` attributes set from other `self` attributes
            for module in modules:
                self._walk(module, {}, None, record=False)
        for module in modules:
            self._walk(module, {}, None, record=True)
        return self.reads

    # ---- scopes ----------------------------------------------------------------------

    def _walk(self, node, env, owner, record):
        """Visits the body of a module, class or function with its variables."""
        env = dict(env)
        body = list(_own_nodes(node))
        for _ in range(2):  # assignments that use later ones
            for child in body:
                self._bind(child, env, owner)
        for child in body:
            if isinstance(child, ast.ClassDef):
                self.bases[child.name] = [
                    n for b in child.bases for n in _annotation_names(b)
                ]
                self._walk(child, env, child.name, record)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner = dict(env)
                for arg in _arguments(child):
                    if arg.annotation is None:
                        inner[arg.arg] = set(self.hints.get(arg.arg, set()))
                    else:
                        inner[arg.arg] = self.classes(arg.annotation)
                if owner and self.classes(child.returns):
                    if any(_name(d) == "property" for d in child.decorator_list):
                        attrs = self.self_attrs.setdefault(owner, {})
                        attrs.setdefault(child.name, set()).update(
                            self.classes(child.returns)
                        )
                self._walk(child, inner, owner, record)
            elif record and isinstance(child, ast.Attribute):
                if isinstance(child.ctx, ast.Load):
                    self._read(self.types(child.value, env, owner), child.attr)
            elif record and isinstance(child, ast.Call):
                if _name(child.func) == "getattr" and len(child.args) >= 2:
                    field = child.args[1]
                    if isinstance(field, ast.Constant) and isinstance(field.value, str):
                        self._read(self.types(child.args[0], env, owner), field.value)

    def _bind(self, node, env, owner):
        if isinstance(node, ast.Assign):
            for target in node.targets:
                self._assign(target, node.value, env, owner)
        elif isinstance(node, ast.AnnAssign):
            kinds = self.classes(node.annotation)
            if node.value is not None:
                kinds |= self.types(node.value, env, owner)
            self._assign_types(node.target, kinds, env, owner)
        elif isinstance(node, (ast.For, ast.comprehension)):
            items = node.iter
            if isinstance(items, (ast.Tuple, ast.List)):
                kinds = set().union(
                    *(self.types(item, env, owner) for item in items.elts)
                )
                self._assign_types(node.target, kinds, env, owner)
        elif isinstance(node, ast.NamedExpr):
            self._assign(node.target, node.value, env, owner)

    def _assign(self, target, value, env, owner):
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple):
            for t, v in zip(target.elts, value.elts):
                self._assign(t, v, env, owner)
        else:
            self._assign_types(target, self.types(value, env, owner), env, owner)

    def _assign_types(self, target, kinds, env, owner):
        if isinstance(target, ast.Name):  # bound here, perhaps to no config
            env[target.id] = env.get(target.id, set()) | kinds
        elif kinds and _is_self_attribute(target) and owner:
            attrs = self.self_attrs.setdefault(owner, {})
            attrs.setdefault(target.attr, set()).update(kinds)

    # ---- expressions -----------------------------------------------------------------

    def types(self, node, env, owner):
        """The config classes `node` may hold."""
        if isinstance(node, ast.Name):
            return env.get(node.id, set())
        if _is_self_attribute(node):
            return self._self_attribute(owner, node.attr, set())
        if isinstance(node, ast.Attribute):
            kinds = set()
            for kind in self.types(node.value, env, owner):
                kinds |= self.tree.children.get((kind, node.attr), set())
            return kinds
        if isinstance(node, ast.Call):
            function = node.func
            if isinstance(function, ast.Attribute) and function.attr == "copy":
                return self.types(function.value, env, owner)
            if _name(function) == "replace" and node.args:  # dataclasses.replace
                return self.types(node.args[0], env, owner)
            return set(self.returns.get(_name(function), set()))
        if isinstance(node, ast.IfExp):
            return self.types(node.body, env, owner) | self.types(
                node.orelse, env, owner
            )
        if isinstance(node, ast.BoolOp):
            return set().union(*(self.types(v, env, owner) for v in node.values))
        return set()

    def _self_attribute(self, owner, attr, seen):
        if owner is None or owner in seen:
            return set()
        seen.add(owner)
        kinds = set(self.self_attrs.get(owner, {}).get(attr, set()))
        for base in self.bases.get(owner, []):
            kinds |= self._self_attribute(base, attr, seen)
        return kinds

    def _read(self, kinds, field):
        for kind in kinds:
            if field in self.tree.fields[kind]:
                self.reads.add((kind, field))


def _own_nodes(scope):
    """The nodes of `scope`, not those inside the classes and functions it defines
    (those are yielded themselves, then walked as scopes of their own)."""
    stack = list(reversed(list(ast.iter_child_nodes(scope))))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(
            node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
        ):
            stack.extend(reversed(list(ast.iter_child_nodes(node))))
        elif isinstance(node, ast.Lambda):
            stack.extend(reversed(list(ast.iter_child_nodes(node))))


def _arguments(function):
    arguments = function.args
    return [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]


def _snake_case(name):
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _name(node):
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _is_self_attribute(node):
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
    )


def consumer_modules(tree):
    skipped = tree.modules()
    for folder in CONSUMERS:
        for path in sorted((ROOT / folder).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if path.resolve() in skipped or relative.startswith(SKIPPED):
                continue
            yield ast.parse(path.read_text(), filename=relative)


def unread_fields(tree, modules):
    reads = Reads(tree).scan(list(modules))
    return sorted(
        f"{kind.__name__}.{field}"
        for kind, fields in tree.fields.items()
        for field in fields
        if (kind, field) not in reads
    )


def test_every_config_field_is_read_by_the_code_that_consumes_its_config():
    tree = ConfigTree.of_experiments()
    unread = unread_fields(tree, consumer_modules(tree))
    assert not unread, f"Config fields no code reads: {unread}"


# ---- the check itself ----------------------------------------------------------------


@dataclasses.dataclass
class FakeModelConfig(ImageClassificationModelConfig):
    # `shape` and `dtype` are read all over the code, of tensors; `never_read`
    # nowhere. None of them is read of a model config.
    shape: int = 0
    dtype: str = ""
    never_read: int = 0


def test_a_field_read_only_of_other_objects_is_reported():
    tree = ConfigTree.of_experiments()
    tree.add(FakeModelConfig())
    for task in tree.fields:
        if (task, "model") in tree.children:
            tree.children[task, "model"].add(FakeModelConfig)
    unread = unread_fields(tree, consumer_modules(tree))
    assert {
        "FakeModelConfig.shape",
        "FakeModelConfig.dtype",
        "FakeModelConfig.never_read",
    } <= set(unread)
    # Its inherited fields are read through `self.config.model` in the tasks.
    assert "FakeModelConfig.num_classes" not in unread


SAMPLE = """
def build(model_config: "ImageClassificationModelConfig", layer, op):
    backbone = model_config.backbone
    print(op.type, layer.dropout_rate, layer.num_classes)
    return backbone.type

def hints(backbone_config, backbone, params):
    backbone = make_backbone()
    return backbone_config.params, backbone.params, params.input_size

class Reader:
    def __init__(self, params: ImageClassificationModelConfig | None):
        self.params = params
        params.dropout_rate = 0.5  # a write

class Child(Reader):
    def size(self):
        return self.params.input_size

def configs() -> ImageClassificationModelConfig: ...

for config in (configs(),):
    config.copy().num_classes
"""


def test_reads_follow_annotations_assignments_fields_and_self():
    tree = ConfigTree({}, {}, {})
    tree.add(ImageClassificationModelConfig())
    reads = Reads(tree).scan([ast.parse(SAMPLE)])
    assert reads == {
        (ImageClassificationModelConfig, "backbone"),
        (BackboneConfig, "type"),  # model_config.backbone.type
        (BackboneConfig, "params"),  # backbone_config.params
        # params.input_size (`params` is annotated elsewhere), self.params.input_size
        (ImageClassificationModelConfig, "input_size"),
        (ImageClassificationModelConfig, "num_classes"),
    }
