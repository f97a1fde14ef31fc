"""A one-frame mailbox between a producer thread (camera reader, HTTP handlers) and the
publishing thread: the newest frame replaces an unpublished one, so a slow publisher or
subscriber never makes a queue grow or frames age; each replaced frame is counted as a drop.
ROS-free."""
import threading


class LatestSlot:

    def __init__(self):
        self._item = None
        self._full = False
        self._closed = False
        self._changed = threading.Condition()
        self.dropped = 0            # frames replaced before anyone took them

    def put(self, item) -> bool:
        """Offer a frame; True if it replaced one nobody took (a drop)."""
        with self._changed:
            replaced = self._full
            if replaced:
                self.dropped += 1
            self._item, self._full = item, True
            self._changed.notify()
        return replaced

    def take(self, timeout: float):
        """The newest frame, waiting up to `timeout` s; None on timeout or once closed."""
        with self._changed:
            if not self._changed.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                return None
            item, self._item, self._full = self._item, None, False
            return item

    def close(self) -> None:
        """Wake the taker for good (node shutdown)."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
