"""What the discussion tells the rest of the site. Sent inside the transaction that made the
change, so a receiver that queues mail (outbox.py) commits or rolls back with it.

- ``comment_posting(comment, settings, subscribe_thread, subscribe_posts)``: a new comment
  passed the guards and is about to be stored (it has no id yet). Sent *before* the write
  transaction: receivers do their reads here (who is to be mailed, whether the thread has
  subscribers) and keep what they found on the comment for their ``comment_posted``
  receiver, so the transaction, which on SQLite holds the one write lock, only writes;
- ``comment_posted(comment, settings, subscribe_thread, subscribe_posts)``: a new comment was
  stored (any status);
- ``comment_moderated(comment, old_status, new_status, moderator)``: a moderator (or a signed
  link from an email, acting for one) changed its status; ``moderator`` is None when no
  moderator did (its author's edit sent it back to the queue or to the trash).
- ``replies_moved(thread_ids)``: comments were deleted for ever and their replies moved up
  to the nearest surviving ancestor, in bulk (no ``post_save`` for them), on these threads.
"""

from django.dispatch import Signal

comment_posting = Signal()
comment_posted = Signal()
comment_moderated = Signal()
replies_moved = Signal()
