"""A local stand-in for DingTalk that speaks the real Stream protocol, for tests and demos."""

from imgbot.simulator.delivery import Delivery
from imgbot.simulator.models import Reply
from imgbot.simulator.server import DingTalkSimulator

__all__ = ["Delivery", "DingTalkSimulator", "Reply"]
