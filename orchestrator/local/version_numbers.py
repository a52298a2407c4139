"""Lambda version numbers in the emulator: never given twice, as on AWS.

moto (5.2.x) numbers a new version `len(versions) + 1`: once a version is deleted (as
orchestrator/release/prune.py does after every promotion) the next PublishVersion reuses the
number of a version that still exists, and its ARN then resolves to the new one. On AWS a
function's version numbers only rise: a deleted number is never published again. Here
each function remembers the highest number it has published, and a new version gets the
next one.

`install()` wraps moto's LambdaStorage.publish_version in the emulator's process;
orchestrator/local/motoserver.py calls it.
"""

from __future__ import annotations

from typing import Any

_HIGHEST = "edgeship_highest_version"  # kept in moto's per-function entry


def next_number(existing: list[int], highest_published: int) -> int:
    """The number of the next version: above every one published, deleted or not."""
    return max([highest_published, *existing]) + 1


def install() -> None:
    from moto.awslambda.models import LambdaStorage

    original = LambdaStorage.publish_version
    if getattr(original, "_edgeship", False):
        return

    def publish_version(self: Any, name_or_arn: str, description: str = "") -> Any:
        function = self.get_function_by_name_or_arn_forbid_qualifier(name_or_arn)
        entry = self._functions.get(function.function_name)
        before = list(entry["versions"]) if entry else []
        published = original(self, name_or_arn, description)
        if entry is None or published is None or len(entry["versions"]) == len(before):
            return published  # nothing new was published
        number = next_number([int(v.version) for v in before], int(entry.get(_HIGHEST, 0)))
        if int(published.version) != number:
            reused = published.function_arn
            published.set_version(number)
            # moto pointed the reused ARN at the new version: give it back to its owner
            for version in before:
                if version.function_arn == reused:
                    self._arns[reused] = version
            self._arns[published.function_arn] = published
        entry[_HIGHEST] = number
        return published

    publish_version._edgeship = True  # type: ignore[attr-defined]
    LambdaStorage.publish_version = publish_version  # type: ignore[method-assign]
