"""The file library: files added once (``herald files add``), sent by id on every channel.

- :mod:`~herald.files.store`: the :class:`~herald.files.store.FileStore` interface and its
  Redis implementation (chunked values under ``herald:files:``).
- :mod:`~herald.files.detect`: the content type, from the bytes.
- :mod:`~herald.files.limits`: each channel type's size caps.
- :mod:`~herald.files.signing`: signed, expiring URLs (``/files/<id>`` of ``herald webhooks``).
- :mod:`~herald.files.uploads`: the ids providers gave for a file, shared by the fleet, and
  the lock that makes one worker upload it.
- :mod:`~herald.files.library`: what the pipeline and the adapters use of all that.

docs/content.md#the-file-library tells the whole story.
"""
