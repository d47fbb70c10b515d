"""The imported seed article in a real browser (Debian's Chromium): the hundred comments of the
WordPress export, each nested under the same parent as in WordPress."""

from __future__ import annotations

import pytest

from broadsheet.wordpress.importer import import_wxr
from broadsheet.wordpress.models import WordPressId
from broadsheet.wordpress.wxr import Item, read_wxr
from tests.wordpress.test_wxr_reader import SEED

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]


def test_imported_seed_article_shows_every_comment_under_its_wordpress_parent(
    live_server, new_page
):
    from broadsheet.publishing.services import home_for_site

    home_for_site()
    import_wxr(path=SEED)
    ids = dict(WordPressId.objects.filter(kind="comment").values_list("wp_key", "object_id"))
    wp_comments = [c for r in read_wxr(SEED) if isinstance(r, Item) for c in r.comments]
    expected = {
        ids[str(c.wp_id)]: ids[str(c.parent_wp_id)] if c.parent_wp_id else None for c in wp_comments
    }

    page = new_page(width=390, height=844)
    page.goto(
        f"{live_server.url}/2017/11/20/"
        "greetings-from-lugansk-communists-to-workers-world-party-2017-conference/"
    )
    # Each comment's parent as the reader sees it: the comment <li> its list sits in.
    shown = page.eval_on_selector_all(
        "#comments li.comment",
        """items => items.map(li => {
            const parent = li.parentElement.closest('li.comment');
            return [li.id, parent ? parent.id : null, li.offsetHeight > 0];
        })""",
    )
    assert len(shown) == 100
    assert all(visible for _, _, visible in shown)
    got = {
        int(anchor.removeprefix("comment-")): int(parent.removeprefix("comment-"))
        if parent
        else None
        for anchor, parent, _ in shown
    }
    assert got == expected
    assert page.locator(".comments-title").inner_text().startswith("100 responses")
    assert page.dialogs == []
