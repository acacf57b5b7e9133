# SPDX-License-Identifier: Apache-2.0
"""The channel interface every delivery backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from ..alertfile import Alert

Record = Callable[[Sequence[Alert]], None]
"""Called by a sink right after a channel accepted a message carrying these alerts."""


class Sink(ABC):
    """A delivery backend that serves one or more channels.

    A channel is the unit of delivery bookkeeping: a webhook is one channel,
    e-mail is the summary channel plus one channel per institution, sightings
    are one channel per MISP server.
    """

    @abstractmethod
    def channels(self, alert: Alert) -> list[str]:
        """The channels ``alert`` must be delivered on."""

    @abstractmethod
    def deliver(self, channel: str, alerts: Sequence[Alert], record: Record) -> None:
        """Send ``alerts`` on ``channel``, calling ``record`` after each accepted message.

        Raises DeliveryError at the first message the channel refuses; what was
        recorded before stays recorded.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections held for the run."""
