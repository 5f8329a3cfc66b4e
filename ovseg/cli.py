"""What every command-line tool shares: one-line errors (``--debug`` for the traceback), ``--cfg-options``.

``run_tool(main)`` is the ``__main__`` entry of each tool: a user error (missing file, bad config key, bad
option, unreadable checkpoint) prints one line naming the tool (and the rank in a distributed run) and exits
1; ``--debug`` anywhere on the command line, or ``OVSEG_DEBUG=1``, lets the traceback through instead.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

__all__ = ['run_tool', 'debug_enabled', 'error_line', 'CfgOptionsAction', 'merge_cfg_options', 'DEBUG_FLAG']

DEBUG_FLAG = '--debug'
_TRUE = ('1', 'true', 'yes', 'on')
# Exceptions whose message is the whole story; others get their type name in front.
_PLAIN = (ValueError, OSError, LookupError, RuntimeError, TypeError, ImportError)


def debug_enabled(argv: Sequence[str] | None = None) -> bool:
    argv = sys.argv[1:] if argv is None else argv
    return DEBUG_FLAG in argv or os.environ.get('OVSEG_DEBUG', '').lower() in _TRUE


def _rank_tag() -> str:
    world = os.environ.get('WORLD_SIZE')
    if world and world != '1':
        return f' (rank {os.environ.get("RANK", "?")}/{world})'
    return ''


def error_line(exc: BaseException, prog: str) -> str:
    """The one line a user sees for ``exc``."""
    timeout = None
    if 'torch.distributed' in sys.modules:  # no torch loaded: no process group, and light tools stay light
        from ovseg.utils.dist_heartbeat import describe_collective_failure
        timeout = describe_collective_failure(exc)
    if timeout is not None:
        message = timeout
    elif isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        message = f'{exc.strerror}: {exc.filename}'
    else:
        args = getattr(exc, 'args', ())
        text = args[0] if isinstance(exc, KeyError) and len(args) == 1 and isinstance(args[0], str) else str(exc)
        message = text.strip() or type(exc).__name__
        if not isinstance(exc, _PLAIN):
            message = f'{type(exc).__name__}: {message}'
    return f'{prog}{_rank_tag()}: error: {message} [{DEBUG_FLAG} or OVSEG_DEBUG=1 shows the traceback]'


def run_tool(main: Callable[[list[str]], Any], argv: Sequence[str] | None = None) -> NoReturn:
    """Call ``main(argv without --debug)`` and exit: its int return value (None/other = 0), 1 on an error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_enabled(argv)
    prog = os.path.basename(sys.argv[0]) or 'ovseg'
    try:
        result = main([a for a in argv if a != DEBUG_FLAG])
    except SystemExit as exc:  # argparse's usage errors (exit 2) pass; `raise SystemExit('msg')` gets the format
        if not isinstance(exc.code, str):
            raise
        message = exc.code[len('error: '):] if exc.code.startswith('error: ') else exc.code
        print(f'{prog}{_rank_tag()}: error: {message}', file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        if debug:
            raise
        print(f'{prog}{_rank_tag()}: interrupted', file=sys.stderr)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the point of this function
        if debug:
            raise
        print(error_line(exc, prog), file=sys.stderr, flush=True)
        sys.exit(1)
    sys.exit(result if isinstance(result, int) and not isinstance(result, bool) else 0)


# --------------------------------------------------------------------------------------------- cfg-options
class CfgOptionsAction(argparse.Action):
    """``--cfg-options KEY=VALUE ...`` parsed like mmengine's ``DictAction``; a malformed item is a usage error."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        from mmengine.config import DictAction  # mmengine only for tools that take config overrides
        options = dict(getattr(namespace, self.dest, None) or {})
        for item in values:
            key, sep, value = item.partition('=')
            if not sep or not key.strip():
                raise argparse.ArgumentError(self, f'{item!r} is not KEY=VALUE (e.g. train_cfg.max_iters=100)')
            try:
                options[key.strip()] = DictAction._parse_iterable(value)
            except Exception as exc:  # noqa: BLE001 - mmengine raises assorted errors on unbalanced brackets
                raise argparse.ArgumentError(self, f'{item!r}: cannot parse the value ({exc})') from None
        setattr(namespace, self.dest, options)


def _lookup(cfg: Any, key: str) -> tuple[bool, Any]:
    node = cfg
    for part in key.split('.'):
        if hasattr(node, 'keys') and part in node:  # dicts, ConfigDict and mmengine's Config
            node = node[part]
        elif isinstance(node, (list, tuple)) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _type_problem(old: Any, new: Any) -> str | None:
    if old is None or new is None:
        return None
    if isinstance(old, bool):
        return None if isinstance(new, bool) else 'a boolean (True/False)'
    if isinstance(old, int):
        return None if isinstance(new, int) and not isinstance(new, bool) else 'an integer'
    if isinstance(old, float):
        return None if isinstance(new, (int, float)) and not isinstance(new, bool) else 'a number'
    if isinstance(old, Mapping):
        return None if isinstance(new, Mapping) else 'a dict'
    if isinstance(old, (list, tuple)):
        return None if isinstance(new, (list, tuple)) else 'a list or tuple'
    return None


def merge_cfg_options(cfg: Any, options: Mapping[str, Any] | None) -> Any:
    """``cfg.merge_from_dict(options)`` after checking each value against the type of the value it replaces.

    ``train_cfg.max_iters=abc`` would otherwise reach the training loop as a string and fail far from the
    command line; a new key (not in the config) is accepted as mmengine does.
    """
    if not options:
        return cfg
    for key, value in options.items():
        found, old = _lookup(cfg, key)
        problem = _type_problem(old, value) if found else None
        if problem is not None:
            raise ValueError(f'--cfg-options {key}={value!r}: expected {problem} like the config value {old!r}')
    cfg.merge_from_dict(dict(options))
    return cfg
