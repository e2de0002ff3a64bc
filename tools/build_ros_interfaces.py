"""Build the ``edgetts_interfaces`` ROS 2 package (the ``Solve`` action of ``edgetts ros2``) into
the running Python environment, without colcon, CMake or a ROS distro.

Why a script: the PyPI ROS wheels (``ros-rclpy`` and friends, pulled in by ``edgetts[ros2]``) ship
the rosidl generators, their templates, headers and shared libraries, laid out as an ament prefix
at ``sys.prefix`` (``lib/``, ``include/<pkg>/``, ``share/<pkg>/``), but no build tool. This runs
what ``rosidl_generate_interfaces`` would: ``.action`` -> ``.idl`` (rosidl_adapter), C structs
(rosidl_generator_c), the fastrtps, introspection and dispatching C type supports, the Python
bindings (rosidl_generator_py), then compiles them with the system C/C++ compiler and installs
them beside the wheels' own interface packages:

    sys.prefix/lib/libedgetts_interfaces__*.so            (found through LD_LIBRARY_PATH, which
                                                            the wheels' bootstrapper sets)
    site-packages/edgetts_interfaces/                      (the Python package and its extension)
    sys.prefix/share/edgetts_interfaces/                   (.action, .idl, package.xml, ament index)

Usage (in the venv that has ``edgetts[ros2]``; needs gcc and g++):

    python tools/build_ros_interfaces.py [--check]

``--check`` imports the result and prints where it lives. Building takes ~20 s on 2 cores. Two
wheel quirks are worked around here: each ros wheel carries both a dist-info and an egg-info, so
``rosidl generate`` refuses its own entry points as duplicates (the generator classes are called
directly instead), and ament_index needs AMENT_PREFIX_PATH, which nothing sets (it is set to
``sys.prefix`` for the generators).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

PACKAGE = "edgetts_interfaces"
SOURCE = Path(__file__).resolve().parents[1] / "ros2" / PACKAGE
# Interface packages the action's generated types refer to (goal ids, stamps, service events).
DEPENDENCIES = ("action_msgs", "builtin_interfaces", "unique_identifier_msgs", "service_msgs")
PREFIX = Path(sys.prefix)
SITE = Path(sysconfig.get_paths()["purelib"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="import the built package afterwards")
    parser.add_argument("--keep", type=Path, help="build in this folder and keep it (for debugging)")
    args = parser.parse_args()
    os.environ.setdefault("AMENT_PREFIX_PATH", str(PREFIX))
    # The hash step looks its extension up by entry point and warns about each duplicate.
    logging.getLogger("rosidl_cli.entry_points").setLevel(logging.ERROR)
    missing = [tool for tool in ("gcc", "g++") if shutil.which(tool) is None]
    if missing:
        sys.exit(f"build_ros_interfaces: {', '.join(missing)} not found; install a C/C++ compiler")
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
        build(args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="edgetts-rosidl-") as tmp:
            build(Path(tmp))
    if args.check:
        check()
    return 0


def build(work: Path) -> None:
    actions = sorted(p.relative_to(SOURCE) for p in (SOURCE / "action").glob("*.action"))
    idl_files = translate(actions, work / "idl")
    generated = generate(idl_files, work)
    compile_and_install(generated, work)
    install_share(actions, idl_files)
    print(f"built {PACKAGE} into {PREFIX}")


def translate(actions: list[Path], out: Path) -> list[str]:
    """``.action`` -> ``.idl``, the only input format the generators take without entry points."""
    from rosidl_adapter.action import convert_action_to_idl

    (out / "action").mkdir(parents=True, exist_ok=True)
    for action in actions:
        convert_action_to_idl(SOURCE, PACKAGE, action, out / "action")
    return [f"{out}:{action.with_suffix('.idl')}" for action in actions]


def generate(idl_files: list[str], work: Path) -> dict[str, list[Path]]:
    """Run each generator the way rosidl_generate_interfaces does, each into its own include root
    ``work/<generator>/edgetts_interfaces`` (generator_c and introspection_c both write a
    ``detail/solve__type_support.c``), so that ``#include "edgetts_interfaces/..."`` resolves."""
    from rosidl_generator_c.cli import GenerateC
    from rosidl_generator_py.cli import GeneratePython
    from rosidl_typesupport_c.cli import GenerateCTypesupport
    from rosidl_typesupport_fastrtps_c.cli import GenerateFastRTPSCTypesupport
    from rosidl_typesupport_introspection_c.cli import GenerateIntrospectionCTypesupport

    include = [str(PREFIX / "share" / dep) for dep in DEPENDENCIES]
    steps = {
        "generator_c": GenerateC("c"),
        "typesupport_fastrtps_c": GenerateFastRTPSCTypesupport("fastrtps_c"),
        "typesupport_introspection_c": GenerateIntrospectionCTypesupport("introspection_c"),
        "typesupport_c": GenerateCTypesupport("c"),
        # The Python extension goes through the dispatching C type support, as the wheels' own
        # packages do (rosidl_generator_py imports `<pkg>_s__rosidl_typesupport_c`).
        "generator_py": GeneratePython("py", typesupport_implementations=["rosidl_typesupport_c"]),
    }
    generated = {}
    for name, extension in steps.items():
        files = extension.generate(PACKAGE, idl_files, include, output_path=work / name / PACKAGE)
        generated[name] = [Path(f) for f in files]
    return generated


def compile_and_install(generated: dict[str, list[Path]], work: Path) -> None:
    """Compile the five shared libraries and the Python extension (the targets CMake would)."""
    lib_dir = PREFIX / "lib"
    include_flags = [f"-I{work / name}" for name in generated]
    include_flags.append(f"-I{PREFIX / 'include'}")  # fastcdr's headers are not nested
    include_flags += [f"-I{d}" for d in sorted((PREFIX / "include").iterdir()) if d.is_dir()]
    include_flags += [f"-I{sysconfig.get_paths()['include']}", f"-I{numpy_include()}"]
    base = ["-shared", "-fPIC", "-O2", "-w", *include_flags, f"-L{lib_dir}", f"-Wl,-rpath,{lib_dir}"]

    def deps(suffix: str) -> list[str]:
        return [f"-l{dep}__rosidl_{suffix}" for dep in DEPENDENCIES]

    def lib(suffix: str) -> str:
        return f"-l{PACKAGE}__rosidl_{suffix}"

    def sources(name: str, *suffixes: str) -> list[str]:
        return [str(f) for f in generated[name] if f.suffix in suffixes]

    out = work / "lib"
    out.mkdir(exist_ok=True)
    targets = [
        ("gcc", f"lib{PACKAGE}__rosidl_generator_c.so", sources("generator_c", ".c"),
         [*deps("generator_c"), "-lrosidl_runtime_c", "-lrcutils"]),
        ("g++", f"lib{PACKAGE}__rosidl_typesupport_fastrtps_c.so",
         sources("typesupport_fastrtps_c", ".cpp"),
         [lib("generator_c"), *deps("typesupport_fastrtps_c"), *deps("generator_c"),
          "-lrosidl_typesupport_fastrtps_c", "-lrosidl_typesupport_fastrtps_cpp", "-lfastcdr",
          "-lrmw", "-lrosidl_runtime_c", "-lrcutils"]),
        ("gcc", f"lib{PACKAGE}__rosidl_typesupport_introspection_c.so",
         sources("typesupport_introspection_c", ".c"),
         [lib("generator_c"), *deps("typesupport_introspection_c"),
          "-lrosidl_typesupport_introspection_c", "-lrosidl_runtime_c"]),
        ("g++", f"lib{PACKAGE}__rosidl_typesupport_c.so", sources("typesupport_c", ".cpp"),
         [lib("generator_c"), *deps("typesupport_c"), "-lrosidl_typesupport_c", "-lrosidl_runtime_c",
          "-lrcpputils", "-lrcutils"]),
        ("gcc", f"lib{PACKAGE}__rosidl_generator_py.so",
         [s for s in sources("generator_py", ".c") if ".ep." not in s],
         [lib("generator_c"), lib("typesupport_c"), *deps("generator_py"), *deps("typesupport_c"),
          *deps("generator_c"), "-lrosidl_runtime_c", "-lrcutils"]),
    ]  # fmt: skip
    for compiler, target, srcs, libs in targets:
        run([compiler, *base, "-o", str(out / target), *srcs, f"-L{out}", *libs])
        shutil.copy2(out / target, lib_dir / target)  # later targets link against the installed one

    py_package = SITE / PACKAGE
    if py_package.exists():
        shutil.rmtree(py_package)
    skip = shutil.ignore_patterns("*.c", "*.h", "tmp", "*.json", "*.idl")  # sources stay in the build
    shutil.copytree(work / "generator_py" / PACKAGE, py_package, ignore=skip)
    (py_package / "__init__.py").touch()
    ext = f"{PACKAGE}_s__rosidl_typesupport_c{sysconfig.get_config_var('EXT_SUFFIX')}"
    entry = next(s for s in sources("generator_py", ".c") if ".ep.rosidl_typesupport_c." in s)
    links = [lib("generator_py"), lib("typesupport_c"), lib("generator_c"), "-lrosidl_runtime_c"]
    run(["gcc", *base, "-o", str(py_package / ext), entry, *links])


def install_share(actions: list[Path], idl_files: list[str]) -> None:
    """Interface definitions and the ament index entries, so that ROS tools can find the package."""
    share = PREFIX / "share" / PACKAGE
    (share / "action").mkdir(parents=True, exist_ok=True)
    shutil.copy2(SOURCE / "package.xml", share / "package.xml")
    for action, idl in zip(actions, idl_files, strict=True):
        shutil.copy2(SOURCE / action, share / action)
        root, relative = idl.split(":", 1)
        shutil.copy2(Path(root) / relative, share / relative)
    index = PREFIX / "share" / "ament_index" / "resource_index"
    (index / "packages").mkdir(parents=True, exist_ok=True)
    (index / "packages" / PACKAGE).write_text("")
    (index / "rosidl_interfaces").mkdir(parents=True, exist_ok=True)
    names = [str(a) for a in actions] + [idl.split(":", 1)[1] for idl in idl_files]
    (index / "rosidl_interfaces" / PACKAGE).write_text("\n".join(sorted(names)) + "\n")


def numpy_include() -> str:
    import numpy

    return numpy.get_include()


def run(command: list[str]) -> None:
    shown = command[:1] + command[-6:]  # the compiler and what it links; the full line is in the error
    print("+", " ".join(Path(c).name if c.endswith((".c", ".cpp")) else c for c in shown))
    subprocess.run(command, check=True)


def check() -> None:
    """Import in a fresh interpreter: the new libraries are found through LD_LIBRARY_PATH, which
    the ros wheels' bootstrapper sets when Python starts."""
    code = (
        "from rclpy.type_support import check_for_type_support;"
        "from edgetts_interfaces.action import Solve; check_for_type_support(Solve);"
        "Solve.Goal(question='q', latency_ms=1.0); print('edgetts_interfaces: Solve imports')"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


if __name__ == "__main__":
    sys.exit(main())
