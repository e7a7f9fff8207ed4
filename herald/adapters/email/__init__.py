"""The email channels: one email model for both (:mod:`~herald.adapters.email.message`), its
HTML policy (:mod:`~herald.adapters.email.html`), attachment downloads
(:mod:`~herald.adapters.email.attachments`), and the SMTP and SendGrid adapters."""
