"""The pages point at what exists: every repository path a page names is there.

A path counts when it names a file (it ends in one of FILES) or a folder (it ends in /) and its
first part is a folder of the checkout (`benchmarks/results/x.json`) or of the package
(`fleet/station.py` is selfimprove_ros/fleet/station.py); topics such as `episode/status` are
neither. `<task>` and `*` match like a shell's glob, `{a,b}` must match each way. Run folders
(`runs/...`) are made by commands, not shipped, and commands in fenced blocks may run
elsewhere, so neither is checked. History may name what is gone with the commit that still
has it: `benchmarks/sample_efficiency.py@95f52fe` is checked against that commit.
"""

import glob
import os
import re
import subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'selfimprove_ros')
TOP = ('benchmarks', 'config', 'docs', 'launch', 'models', 'resource', 'scripts', 'test',
       'selfimprove_ros')
FILES = ('.py', '.md', '.json', '.yaml', '.xml', '.png', '.txt', '.sh', '.onnx', '.pt',
         '.sha256', '.cfg')
PATH = re.compile(r'(?<![\w./<>{}*$-])((?:[\w.<>{}*,-]+/)+[\w.<>{}*,-]*)(@[0-9a-f]{7,40})?')
LINK = re.compile(r'\]\(([^)#\s]+)(?:#[^)]*)?\)')


def pages(root=ROOT) -> list:
    """Return README.md and every page under docs/, notes included."""
    found = [os.path.join(root, 'README.md')]
    for folder, _, files in os.walk(os.path.join(root, 'docs')):
        found += [os.path.join(folder, name) for name in sorted(files) if name.endswith('.md')]
    return found


def _expand(path: str) -> list:
    """Return the glob patterns of `path`: <...> and {a,b} as a shell would match them."""
    path = re.sub(r'<[^>]*>', '*', path)
    match = re.search(r'\{([^{}]*)\}', path)
    if not match:
        return [path]
    return [p for part in match.group(1).split(',')
            for p in _expand(path[:match.start()] + part + path[match.end():])]


def _git(root, *args) -> bool:
    return subprocess.run(['git', *args], cwd=root, capture_output=True).returncode == 0


def _exists(path: str, roots, commit: str = '', root=ROOT) -> bool:
    if commit:
        # A source tree without its history (a tarball) cannot check history; a checkout can.
        return _git(root, 'cat-file', '-e', f'{commit}:{path.rstrip("/")}') or \
            not _git(root, 'rev-parse', '--git-dir')
    return all(any(glob.glob(os.path.join(base, pattern)) for base in roots)
               for pattern in _expand(path))


def dangling(page: str, root=ROOT) -> list:
    """Return 'page:line: path' for every path the page names that does not exist."""
    package = os.path.join(root, 'selfimprove_ros')
    inside = set(os.listdir(package)) if os.path.isdir(package) else set()
    found, fenced = [], False
    with open(page) as stream:
        lines = stream.read().splitlines()
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith('```'):
            fenced = not fenced
        if fenced:
            continue
        for link in LINK.findall(line):
            if '://' not in link and not link.startswith('mailto:') and \
                    not os.path.exists(os.path.join(os.path.dirname(page), link)):
                found.append(f'{os.path.relpath(page, root)}:{number}: {link}')
        for path, commit in PATH.findall(line):
            path = path.rstrip('.,;:')
            if not (path.endswith('/') or path.endswith(FILES)):
                continue
            first = path.split('/')[0]
            if first in TOP:
                roots = [root]
            elif first in inside:
                roots = [package]
            else:
                continue  # runs/..., words like and/or, paths of another machine
            if not _exists(path, roots, commit.lstrip('@'), root):
                found.append(f'{os.path.relpath(page, root)}:{number}: {path}{commit}')
    return found


def test_every_path_the_pages_name_exists():
    found = [line for page in pages() for line in dangling(page)]
    assert found == [], ('pages name paths that do not exist (fix the page, or write '
                         'path@commit for history):\n' + '\n'.join(found))


def test_the_pages_include_the_results_and_the_notebook():
    names = {os.path.relpath(page, ROOT) for page in pages()}
    assert {'README.md', os.path.join('docs', 'results.md')} <= names
    assert any(name.startswith(os.path.join('docs', 'notebook', '')) for name in names)


def test_the_check_sees_a_dangling_path_a_broken_link_and_a_wrong_commit(tmp_path):
    assert _git(tmp_path, 'init', '-q')
    for folder in ('docs', 'selfimprove_ros/core', 'benchmarks/results'):
        (tmp_path / folder).mkdir(parents=True)
    (tmp_path / 'selfimprove_ros' / 'core' / 'safety.py').write_text('')
    (tmp_path / 'benchmarks' / 'results' / 'a_k60.json').write_text('{}')
    page = tmp_path / 'docs' / 'page.md'
    page.write_text(
        'core/safety.py and `benchmarks/results/a_{k60,k100}.json`, runs/demo/x.json, and/or\n'
        'see [that](other.md) and benchmarks/results/a_<k>.json; gone: core/gone.py.\n'
        'old: core/safety.py@0000000, the topic episode/status, core/\n'
        '```\ncd elsewhere && cat core/gone.py\n```\n')
    assert dangling(str(page), str(tmp_path)) == [
        'docs/page.md:1: benchmarks/results/a_{k60,k100}.json',
        'docs/page.md:2: other.md', 'docs/page.md:2: core/gone.py',
        'docs/page.md:3: core/safety.py@0000000']
