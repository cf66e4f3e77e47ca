"""What a request makes: drawing or editing, then publishing the renditions with their links."""
