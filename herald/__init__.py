"""Herald: the "Send a Message" step of chat-workflow automation, as a Celery worker fleet."""
