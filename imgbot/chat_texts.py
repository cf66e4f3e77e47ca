"""What the bot says in chat: every user-facing sentence, and the error → sentence mapping."""

from __future__ import annotations

from imgbot.errors import GeneratorError, GeneratorTimeout, ImageError, ReplyError, StorageError

PROGRESS = "正在生成图片，请稍候…"
HELP = (
    "你好！我是画图机器人。直接发一句描述，我就为你画一张图，例如：\n"
    "帮我画一只可爱的小猫\n"
    "图片链接 {days} 天内有效。"
)
NOT_TEXT = "我目前只看得懂文字描述，暂时不能处理图片、文件或语音。请用一句话描述你想要的画面。"
EMPTY = "请告诉我想画什么，例如：帮我画一只可爱的小猫"
TOO_LONG = "描述太长了（{length} 字），请控制在 {limit} 字以内再发一次。"
BUSY = "现在请求有点多，请稍等一会儿再试。"
RATE_LIMITED = "你发得太快啦，请一分钟后再试。"
FAILED = "图片生成失败了，请稍后再试。"
TIMEOUT = "生成超时了，请稍后再试，或换个简单些的描述。"
MODERATED = "内容未通过审核，请换个描述。"
STORAGE = (
    "图片保存失败（存储服务暂时不可用），请稍后再试；如果一直这样，请联系管理员运行 imgbot doctor。"
)
BAD_IMAGE = "生成的图片无法使用，请换个描述再试。"
HELP_WORDS = {"帮助", "help", "/help", "？", "?", "使用说明"}


def for_error(error: BaseException) -> str:
    """One short Chinese sentence telling the user what happened and what to do."""
    if isinstance(error, GeneratorTimeout | TimeoutError):
        return TIMEOUT
    if isinstance(error, GeneratorError):
        return MODERATED if error.moderated else FAILED
    if isinstance(error, StorageError):
        return STORAGE
    if isinstance(error, ImageError):
        return BAD_IMAGE
    if isinstance(error, ReplyError):
        return FAILED
    return FAILED


STORE_DOWN = "服务暂时不可用，请稍后再试。"
GAVE_UP = "这张图多次没能画完，请稍后再发一次。"
