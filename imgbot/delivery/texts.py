"""What the bot says in chat: every user-facing sentence, and the error → sentence mapping."""

from __future__ import annotations

from imgbot.errors import (
    EditUnavailable,
    GeneratorError,
    GeneratorTimeout,
    ImageError,
    PictureError,
    ReplyError,
    StorageError,
)

PROGRESS = "正在生成图片，请稍候…"
HELP = (
    "你好！我是画图机器人。直接发一句描述，我就为你画一张图，例如：\n"
    "帮我画一只可爱的小猫\n"
    "想改一张图：引用这张图片（也可以是我画的图）并写下要改什么，例如「背景换成海边」；"
    "或者把图片和要求放在同一条消息里发给我。\n"
    "想要横图、竖图或方图：写上「横版」「竖版」「方图」或「16:9」这样的比例。\n"
    "想一次要几张：写上张数，例如「画4张小猫」。\n"
    "想再看看自己最近画的图：发「我的图片」。\n"
    "图片链接 {days} 天内有效。"
)
NOT_TEXT = "我目前只看得懂文字描述和图片，暂时不能处理文件或语音。请用一句话描述你想要的画面。"
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


# --- Pictures from users (editing) ------------------------------------------------------------
PICTURE_ALONE = (
    "收到图片！想改这张图，请引用它并写下要改什么（例如「背景换成海边」），"
    "或者把图片和要求放在同一条消息里发给我。"
)
EDIT_NEEDS_INSTRUCTION = "请告诉我要怎么改这张图，例如：背景换成海边"
EDIT_UNAVAILABLE = "当前配置的画图服务不支持修改图片，只能根据文字描述画新图。"
QUOTE_UNREADABLE = "我看不到你引用的那条消息的内容。想改图，请把图片和要求放在同一条消息里发给我。"
PICTURE_EXPIRED = "这张图片已经取不到了（下载码无效或已过期），请重新发送图片再试。"
PICTURE_TOO_LARGE = "图片太大了，请发一张小一些的图片（例如压缩后或截图）再试。"
PICTURE_EMPTY = "这张图片是空的（0 字节），请重新发送。"
PICTURE_MISSING = "这条消息里没有我能取到的图片，请重新发送图片再试。"
PICTURE_UNAVAILABLE = "暂时取不到这张图片（钉钉服务没有响应），请稍后再试。"
NOT_AN_IMAGE = "这不是我能处理的图片（支持 PNG、JPEG、WebP），请换一张图片再试。"
PICTURE_TOO_MANY_PIXELS = "图片的像素太多了，请发一张尺寸小一些的图片再试。"
PICTURE_TOO_SLOW = "这张图片处理起来太慢了，请换一张小一些或普通格式保存的图片再试。"
PICTURE_ERRORS = {
    "too_slow": PICTURE_TOO_SLOW,
    "too_many_pixels": PICTURE_TOO_MANY_PIXELS,
    "invalid": NOT_AN_IMAGE,
    "expired": PICTURE_EXPIRED,
    "too_large": PICTURE_TOO_LARGE,
    "empty": PICTURE_EMPTY,
    "missing": PICTURE_MISSING,
    "unavailable": PICTURE_UNAVAILABLE,
}


def for_error(error: BaseException) -> str:
    """One short Chinese sentence telling the user what happened and what to do."""
    if isinstance(error, PictureError):
        return PICTURE_ERRORS.get(error.reason, PICTURE_UNAVAILABLE)
    if isinstance(error, GeneratorError) and error.moderated:
        return MODERATED
    # Most specific first: EditUnavailable and GeneratorTimeout are GeneratorErrors.
    texts: list[tuple[type[BaseException] | tuple[type[BaseException], ...], str]] = [
        ((GeneratorTimeout, TimeoutError), TIMEOUT),
        (EditUnavailable, EDIT_UNAVAILABLE),
        (GeneratorError, FAILED),
        (StorageError, STORAGE),
        (ImageError, BAD_IMAGE),
        (ReplyError, FAILED),
    ]
    return next((text for kind, text in texts if isinstance(error, kind)), FAILED)


# --- Several pictures in one message (「画4张」) ----------------------------------------------
FEWER_MAX = "一条消息最多画 {count} 张，这次画了 {count} 张。"
FEWER_RATE = "你一分钟内要的图太多了，这次只画了 {count} 张，其余的请过一分钟再要。"
SOME_MISSING = "另有 {missing} 张没能画出来，请稍后再试。"
SOME_REFUSED = "另有 {missing} 张未通过内容审核，没有画出来；请换个描述。"
SEVERAL_TITLE = "图片已生成（{count} 张）"
LINKS_LEFT_OUT = "另有 {count} 张的链接太长，这条消息放不下。"

STORE_DOWN = "服务暂时不可用，请稍后再试。"
UNREADABLE = "这条消息没能读懂（机器人出了错），请换个说法再发一次。"
GAVE_UP = "这张图多次没能画完，请稍后再发一次。"


# --- Cards (REPLY_STYLE=card): the card's title while drawing and after a failure ---------------
CARD_DRAWING = "生成中…"
CARD_FAILED = "没能完成"
CARD_WAITING = "排队中…"
QUEUE_PLACE = "前面还有人在画图，你排在第 {place} 位，轮到后自动开始生成。"

# --- 「我的图片」: the sender's recent pictures ------------------------------------------------
MY_IMAGES_WORDS = {"我的图片", "我的图", "最近的图", "最近的图片", "my images", "my pictures"}
"""Whole messages (compared as ``prompts.folded`` gives them, final punctuation aside) that ask
for the sender's recent pictures instead of a drawing."""
MY_IMAGES_TITLE = "我的图片"
MY_IMAGES_EMPTY = "你在这里还没有最近 {days} 天内画的图。发一句描述，我就为你画一张。"
