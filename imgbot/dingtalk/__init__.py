"""DingTalk's HTTP APIs the bot calls: replies, access tokens, users' picture downloads."""
