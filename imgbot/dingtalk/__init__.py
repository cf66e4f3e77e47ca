"""DingTalk's HTTP APIs the bot calls: replies, interactive cards, access tokens, users' picture
downloads."""
