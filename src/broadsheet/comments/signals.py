"""What the discussion tells the rest of the site. Sent inside the transaction that made the
change, so a receiver that queues mail (outbox.py) commits or rolls back with it.

- ``comment_posted(comment, settings, subscribe_thread, subscribe_posts)``: a new comment was
  stored (any status);
- ``comment_moderated(comment, old_status, new_status, moderator)``: a moderator (or a signed
  link from an email, acting for one) changed its status; ``moderator`` is None when no
  moderator did (its author's edit sent it back to the queue or to the trash).
"""

from django.dispatch import Signal

comment_posted = Signal()
comment_moderated = Signal()
