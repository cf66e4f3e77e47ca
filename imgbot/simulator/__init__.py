"""A local stand-in for DingTalk that speaks the real Stream protocol, for tests and demos."""

from imgbot.simulator.models import Reply
from imgbot.simulator.server import DingTalkSimulator

__all__ = ["DingTalkSimulator", "Reply"]
