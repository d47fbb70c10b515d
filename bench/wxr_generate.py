"""Write a large WordPress export (WXR 1.2) for the import bench, in WordPress core's shape.

Seeded (the same arguments give the same bytes) and streaming: each item is written as soon
as it is built, so memory does not grow with the number of comments. The shape is what core's
``export_wp()`` writes, so WordPress's own importer parsers read it too: the ``http://``
namespace URIs with the prefixes excerpt/content/wfw/dc/wp, no DOCTYPE, each ``<wp:author>``
on one line with ``wp:author_id``, categories parent-first, every ``wp:term`` repeated as core
6.x does, text in CDATA with ``]]>`` split as ``]]]]><![CDATA[>``.

Content: 2 authors, 20 categories (15 with a parent, 3 levels), 200 tags; N posts (Gutenberg
and classic bodies, some ``[caption]``, ``[gallery]`` and ``<!--more-->``), one post of each of
future / draft (zero GMT date) / password / sticky; pages (~1 % of posts) in a hierarchy, one
child written before its parent; comments spread over the published posts and pages, ~60 %
replies up to depth 6; statuses 85 % ``1``, 8 % ``0``, 5 % ``spam``, 2 % ``trash``; a few
pingbacks and trackbacks; dates over 15 years at a fixed UTC−5 offset.

The tally of what was written is printed as JSON on stdout and saved next to the file
(OUT.xml.json), for the import bench to check counts against.

    .venv/bin/python bench/wxr_generate.py OUT.xml [--posts 10000] [--comments 100000] [--seed 42]
"""

from __future__ import annotations

import argparse
import hashlib
import ipaddress
import json
import sys
import time
import unicodedata
from bisect import bisect_left
from collections import Counter, deque
from datetime import datetime, timedelta
from pathlib import Path
from random import Random
from typing import BinaryIO

SITE = "http://old.example"
# A WXR file carries no time zone; core writes post_date in the site's zone. A fixed offset
# (no DST) keeps post_date_gmt exactly computable; Etc/GMT+5 is that zone for --source-timezone.
UTC_OFFSET = timedelta(hours=-5)
SOURCE_TIMEZONE = "Etc/GMT+5"
EXPORTED_AT = datetime(2025, 6, 1, 12, 0, 0)  # UTC; fixed so a seed always gives the same bytes
FIRST_DATE = datetime(2010, 1, 1, 0, 0, 0)
LAST_DATE = datetime(2024, 12, 31, 23, 59, 0)
FUTURE_DATE_LOCAL = datetime(2035, 1, 1, 9, 0, 0)
ZERO_DATE = "0000-00-00 00:00:00"
MAX_DEPTH = 6
REPLY_SHARE = 0.60
STATUS_WEIGHTS = {"1": 85, "0": 8, "spam": 5, "trash": 2}
FIRST_POST_ID = 101

AUTHORS = (
    # id, login, email, display name, first, last
    (1, "editor", "editor@old.example", "Mara Quinn", "Mara", "Quinn"),
    (2, "jdoe", "jorg.doe@old.example", "Jörg Doe", "Jörg", "Doe"),
)

# (name as WordPress stores it, i.e. with &amp;; slug; parent slug; description)
CATEGORIES = (
    ("News", "news", "", "Reporting from here and elsewhere."),
    ("Culture", "culture", "", ""),
    ("Science", "science", "", "Research, explained."),
    ("Sport", "sport", "", ""),
    ("Opinion", "opinion", "", ""),
    ("World", "world", "news", ""),
    ("Local", "local", "news", "The town and the valley."),
    ("Politics", "politics", "news", ""),
    ("Books", "books", "culture", ""),
    ("Film", "film", "culture", ""),
    ("Music", "music", "culture", ""),
    ("Space", "space", "science", ""),
    ("Climate", "climate", "science", ""),
    ("Football", "football", "sport", ""),
    ("Letters &amp; Replies", "letters-replies", "opinion", "What readers wrote."),
    ("Europe", "europe", "world", ""),
    ("Asia", "asia", "world", ""),
    ("Elections", "elections", "politics", ""),
    ("Poetry", "poetry", "books", ""),
    ("Jazz", "jazz", "music", "Mostly live."),
)

WORDS = (
    "the a of and to in is that it was for on are as with his they at be this from have or "
    "by one had not but what all were when we there can an your which their said if do will "
    "each about how up out them then she many some so these would other into has more her two "
    "like him see time could no make than first been its who now people my made over did down "
    "only way find use may water long little very after words called just where most know "
    "council river harbour market winter summer bridge library station garden school union "
    "workers tenants rent wages strike election budget report museum orchestra archive street "
    "village mountain forest coast weather railway hospital court museum theatre festival"
).split()
FIRST_NAMES = (
    "Anna Ben Chloé Dmitri Eva Farid Greta Hiro Ines Jonas Kofi Lena Marta Nikos Olu Priya "
    "Quentin Rosa Søren Tamar Uma Vikram Wanjiru Xu Yara Zoë Łukasz Ngozi Björn Aoife"
).split()
LAST_NAMES = (
    "Adams Bello Costa Dubois Eriksen Fischer García Haddad Ivanova Jensen Kim López Müller "
    "Novak O'Brien Petrov Quispe Rossi Singh Tanaka Umar Vargas Wójcik Yilmaz Zhang Ødegaard"
).split()
GREEK_TAGS = ("Ελλάδα", "δημοκρατία")
CODE_WITH_CDATA_END = "if (a[b[0]]> 1) { return x[y[1]]>0; }"


def cdata(text: str) -> str:
    """Core's wxr_cdata(): CDATA, with any ``]]>`` in the text split across two sections."""
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def slugify(text: str) -> str:
    """ASCII slug, the way WordPress's remove_accents + sanitize_title do it for Latin text."""
    text = text.replace("&amp;", " ")
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    out = "".join(c if c.isalnum() else "-" for c in text)
    return "-".join(part for part in out.split("-") if part)


def utf8_slug(text: str) -> str:
    """WordPress's slug for non-Latin text: lowercase percent-encoded UTF-8 (utf8_uri_encode)."""
    return "-".join(
        "".join(c if c.isascii() and c.isalnum() else "".join(f"%{b:02x}" for b in c.encode())
                for c in word.lower())
        for word in text.split()
    )  # fmt: skip


def mysql(dt: datetime) -> str:
    return f"{dt:%Y-%m-%d %H:%M:%S}"


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def rfc822(dt: datetime) -> str:
    return (
        f"{_DAYS[dt.weekday()]}, {dt.day:02d} {_MONTHS[dt.month - 1]} {dt.year} {dt:%H:%M:%S} +0000"
    )


class Sink:
    """Binary output that counts and hashes what goes through it."""

    def __init__(self, fp: BinaryIO) -> None:
        self.fp = fp
        self.bytes = 0
        self.sha256 = hashlib.sha256()

    def write(self, text: str) -> None:
        data = text.encode("utf-8")
        self.fp.write(data)
        self.bytes += len(data)
        self.sha256.update(data)


class Generator:
    def __init__(self, *, posts: int, comments: int, seed: int) -> None:
        if posts < 8:
            raise SystemExit("--posts must be at least 8 (four special posts + ordinary ones)")
        self.rng = Random(seed)
        self.seed = seed
        self.n_posts = posts
        self.n_comments = comments
        self.n_pages = max(4, round(posts / 100))
        self.total_items = self.n_posts + self.n_pages
        self.t = Counter()
        self.depths = Counter()
        self.comment_id = 1
        self.used_slugs: set[str] = set()
        rng = self.rng
        self.sentences = [self._sentence() for _ in range(3000)]
        self.tags = self._make_tags()
        # Which item slots are pages, and the page tree (small: ~1 % of posts).
        self.page_slots = sorted(rng.sample(range(self.total_items), self.n_pages))
        self.page_index = {slot: k for k, slot in enumerate(self.page_slots)}
        self.pages = self._make_pages()
        # Special posts, by ordinal among posts.
        self.sticky_ord, self.password_ord = 1, 2
        self.draft_ord, self.future_ord = self.n_posts - 2, self.n_posts - 1
        self.comment_counts = self._allocate_comments()

    # -- fixed parts --

    def _sentence(self) -> str:
        words = self.rng.choices(WORDS, k=self.rng.randint(6, 18))
        return " ".join(words).capitalize() + self.rng.choice(".....?!")

    def _make_tags(self) -> list[tuple[int, str, str, str]]:
        """200 tags: (term_id, name, slug, description); a few slugs differ from the name."""
        rng, tags, names = self.rng, [], set()
        pool = [w for w in dict.fromkeys(WORDS) if len(w) > 3]
        while len(tags) < 200 - len(GREEK_TAGS):
            name = " ".join(rng.sample(pool, rng.choice((1, 1, 2))))
            if len(tags) % 37 == 5:
                name = name.upper()
            if name.lower() in names:
                continue
            names.add(name.lower())
            slug = slugify(name)
            if len(tags) % 41 == 7:  # renamed tag whose slug kept a suffix, like alignment-2
                slug += "-2"
            description = f"All about {name}." if len(tags) % 9 == 0 else ""
            tags.append((0, name, slug, description))
        tags += [(0, name, utf8_slug(name), "") for name in GREEK_TAGS]
        first_id = len(CATEGORIES) + 1
        return [(first_id + i, n, s, d) for i, (_, n, s, d) in enumerate(tags)]

    def _make_pages(self) -> list[dict]:
        rng = self.rng
        pages = []
        for k, slot in enumerate(self.page_slots):
            if k == len(self.page_slots) - 1:
                title = "Σχετικά με εμάς"
                slug = utf8_slug(title)
            else:
                title = f"{rng.choice(self.sentences)[:-1][:40].rstrip()} (page {k + 1})"
                slug = slugify(title)
            pages.append({"id": self._item_id(slot), "title": title, "slug": slug, "parent": None})
        # Page 0 is a child of page 1, which has a larger id and comes later in the file (as in
        # the theme test data: a child before its parent). Page 2 is a grandchild of page 1.
        pages[0]["parent"] = 1
        pages[2]["parent"] = 0
        pages[3]["parent"] = 1
        for k in range(4, len(pages) - 1):
            if rng.random() < 0.6:
                candidates = [j for j in range(k) if self._page_depth(pages, j) < 3]
                pages[k]["parent"] = rng.choice(candidates)
        for page in pages:
            path, node = [], page
            while node is not None:
                path.append(node["slug"])
                node = pages[node["parent"]] if node["parent"] is not None else None
            page["path"] = "/".join(reversed(path))
            page["depth"] = len(path)
        return pages

    @staticmethod
    def _page_depth(pages: list[dict], k: int) -> int:
        depth = 1
        while pages[k]["parent"] is not None:
            k, depth = pages[k]["parent"], depth + 1
        return depth

    def _item_id(self, slot: int) -> int:
        return FIRST_POST_ID + 2 * slot  # gaps, as revisions and attachments leave in a real site

    def _allocate_comments(self) -> list[int]:
        """Comments per item slot: skewed (a few busy threads, some silent), summing exactly."""
        rng = self.rng
        targets = [slot for slot in range(self.total_items) if self._can_have_comments(slot)]
        weights = [rng.lognormvariate(0, 1.1) for _ in targets]
        total_weight = sum(weights)
        counts = [0] * self.total_items
        shares = [self.n_comments * w / total_weight for w in weights]
        for slot, share in zip(targets, shares, strict=True):
            counts[slot] = int(share)
        left = self.n_comments - sum(counts)
        by_fraction = sorted(
            range(len(targets)), key=lambda i: shares[i] - int(shares[i]), reverse=True
        )
        for i in by_fraction[:left]:
            counts[targets[i]] += 1
        first_comments = sum(1 for c in counts if c)
        later = self.n_comments - first_comments
        self.reply_p = min(1.0, REPLY_SHARE * self.n_comments / later) if later else 0.0
        return counts

    def _post_ordinal(self, slot: int) -> int:
        return slot - bisect_left(self.page_slots, slot)  # slots before it, less the pages

    def _can_have_comments(self, slot: int) -> bool:
        if slot in self.page_index:
            return True
        return self._post_ordinal(slot) not in (self.draft_ord, self.future_ord)

    # -- writing --

    def write(self, out: Sink) -> None:
        out.write(self._head())
        for slot in range(self.total_items):
            self._item(slot, out)
        out.write("\t\t\t\t</channel>\n</rss>\n\t")

    def _head(self) -> str:
        parts = [
            '<?xml version="1.0" encoding="UTF-8" ?>\n'
            "<!-- This is a WordPress eXtended RSS file generated by WordPress as an export of "
            "your site. -->\n"
            "<!-- It was written by Broadsheet's bench/wxr_generate.py, in core's shape. -->\n\n"
            f'\t<!-- generator="WordPress/6.1.9" created="{EXPORTED_AT:%Y-%m-%d %H:%M}" -->\n'
            '<rss version="2.0"\n'
            '\txmlns:excerpt="http://wordpress.org/export/1.2/excerpt/"\n'
            '\txmlns:content="http://purl.org/rss/1.0/modules/content/"\n'
            '\txmlns:wfw="http://wellformedweb.org/CommentAPI/"\n'
            '\txmlns:dc="http://purl.org/dc/elements/1.1/"\n'
            '\txmlns:wp="http://wordpress.org/export/1.2/"\n'
            ">\n\n<channel>\n"
            "\t<title>The Old Example Gazette</title>\n"
            f"\t<link>{SITE}</link>\n"
            "\t<description>News, culture &amp; letters since 2010</description>\n"
            f"\t<pubDate>{rfc822(EXPORTED_AT)}</pubDate>\n"
            "\t<language>en-US</language>\n"
            "\t<wp:wxr_version>1.2</wp:wxr_version>\n"
            f"\t<wp:base_site_url>{SITE}</wp:base_site_url>\n"
            f"\t<wp:base_blog_url>{SITE}</wp:base_blog_url>\n\n"
        ]
        for author_id, login, email, display, first, last in AUTHORS:
            parts.append(
                f"\t\t<wp:author><wp:author_id>{author_id}</wp:author_id>"
                f"<wp:author_login>{cdata(login)}</wp:author_login>"
                f"<wp:author_email>{cdata(email)}</wp:author_email>"
                f"<wp:author_display_name>{cdata(display)}</wp:author_display_name>"
                f"<wp:author_first_name>{cdata(first)}</wp:author_first_name>"
                f"<wp:author_last_name>{cdata(last)}</wp:author_last_name></wp:author>\n\n"
            )
            self.t["authors"] += 1
        ids = {slug: i for i, (_, slug, _, _) in enumerate(CATEGORIES, start=1)}
        for term_id, (name, slug, parent, description) in enumerate(CATEGORIES, start=1):
            assert not parent or ids[parent] < term_id, "categories must be parent-first"
            parts.append(
                f"\t\t<wp:category>\n\t\t<wp:term_id>{term_id}</wp:term_id>\n"
                f"\t\t<wp:category_nicename>{cdata(slug)}</wp:category_nicename>\n"
                f"\t\t<wp:category_parent>{cdata(parent)}</wp:category_parent>\n"
                f"\t\t<wp:cat_name>{cdata(name)}</wp:cat_name>\n"
                + (
                    f"\t\t<wp:category_description>{cdata(description)}</wp:category_description>\n"
                    if description
                    else ""
                )
                + "\t</wp:category>\n"
            )
            self.t["categories"] += 1
            self.t["categories_with_parent"] += bool(parent)
        for term_id, name, slug, description in self.tags:
            parts.append(
                f"\t\t<wp:tag>\n\t\t<wp:term_id>{term_id}</wp:term_id>\n"
                f"\t\t<wp:tag_slug>{cdata(slug)}</wp:tag_slug>\n"
                f"\t\t<wp:tag_name>{cdata(name)}</wp:tag_name>\n"
                + (f"\t\t<wp:tag_description>{cdata(description)}</wp:tag_description>\n"
                   if description else "")
                + "\t</wp:tag>\n"
            )  # fmt: skip
            self.t["tags"] += 1
        # Core 6.x repeats every category and tag as a <wp:term> (get_terms() with an empty
        # list of custom taxonomies returns all terms); the seed export shows it.
        terms = [
            (i, "category", slug, parent, name)
            for i, (name, slug, parent, _) in enumerate(CATEGORIES, start=1)
        ] + [(term_id, "post_tag", slug, "", name) for term_id, name, slug, _ in self.tags]
        for term_id, taxonomy, slug, parent, name in terms:
            parts.append(
                f"\t\t\t\t<wp:term>\n\t\t<wp:term_id>{term_id}</wp:term_id>\n"
                f"\t\t<wp:term_taxonomy>{cdata(taxonomy)}</wp:term_taxonomy>\n"
                f"\t\t<wp:term_slug>{cdata(slug)}</wp:term_slug>\n"
                f"\t\t<wp:term_parent>{cdata(parent)}</wp:term_parent>\n"
                f"\t\t<wp:term_name>{cdata(name)}</wp:term_name>\n\t</wp:term>\n"
            )
            self.t["wp_terms"] += 1
        parts.append("\t\t\n\t<generator>https://wordpress.org/?v=6.1.9</generator>\n\n")
        return "".join(parts)

    def _date_for(self, slot: int) -> datetime:
        span = (LAST_DATE - FIRST_DATE).total_seconds()
        step = span / self.total_items
        return FIRST_DATE + timedelta(seconds=int((slot + self.rng.random()) * step))

    def _item(self, slot: int, out: Sink) -> None:
        rng, t = self.rng, self.t
        wp_id = self._item_id(slot)
        page_k = self.page_index.get(slot)
        is_page = page_k is not None
        date_gmt = self._date_for(slot)
        status, password, sticky = "publish", "", 0
        if is_page:
            page = self.pages[page_k]
            title, slug = page["title"], page["slug"]
            link = f"{SITE}/{page['path']}/"
            guid = f"{SITE}/?page_id={wp_id}"
            parent_id = self.pages[page["parent"]]["id"] if page["parent"] is not None else 0
            post_type = "page"
            t["pages"] += 1
            t["pages_with_parent"] += bool(parent_id)
            t[f"page_depth_{page['depth']}"] += 1
            t["pages_before_their_parent"] += bool(parent_id) and parent_id > wp_id
            if "%" in slug:
                t["pages_with_utf8_slug"] += 1
        else:
            ordinal = self._post_ordinal(slot)
            title = self._title()
            slug = self._unique_slug(slugify(title) or f"post-{wp_id}")
            post_type, parent_id = "post", 0
            guid = f"{SITE}/?p={wp_id}"
            if ordinal == self.future_ord:
                status = "future"
                date_gmt = FUTURE_DATE_LOCAL - UTC_OFFSET
            elif ordinal == self.draft_ord:
                status = "draft"
                slug = ""  # core assigns the slug on publishing
            elif ordinal == self.password_ord:
                password = "hunter2"
                t["password_protected"] += 1
            elif ordinal == self.sticky_ord:
                sticky = 1
                t["sticky"] += 1
            date_local = date_gmt + UTC_OFFSET
            if status in ("publish",):
                link = f"{SITE}/{date_local:%Y/%m/%d}/{slug}/"
            else:
                link = f"{SITE}/?p={wp_id}"  # get_permalink() of a draft or scheduled post
            t[f"posts_{status}"] += 1
            t["posts"] += 1
        date_local = date_gmt + UTC_OFFSET
        if status == "draft":
            pub_date, post_date_gmt = "Wed, 30 Nov -0001 00:00:00 +0000", ZERO_DATE
        else:
            pub_date, post_date_gmt = rfc822(date_gmt), mysql(date_gmt)
        modified_gmt = date_gmt
        if rng.random() < 0.2:
            modified_gmt = min(
                date_gmt + timedelta(minutes=rng.randint(5, 60 * 24 * 90)), EXPORTED_AT
            )
        if status == "future":
            modified_gmt = EXPORTED_AT - timedelta(days=2)
        author = rng.choices(AUTHORS, weights=(7, 3))[0]
        body = self._body(wp_id, slot, is_page)
        excerpt = rng.choice(self.sentences) if not is_page and rng.random() < 0.3 else ""
        comment_status = "open" if rng.random() < 0.7 else "closed"
        parts = [
            "\t\t<item>\n"
            f"\t\t<title>{cdata(title)}</title>\n"
            f"\t\t<link>{link}</link>\n"
            f"\t\t<pubDate>{pub_date}</pubDate>\n"
            f"\t\t<dc:creator>{cdata(author[1])}</dc:creator>\n"
            f'\t\t<guid isPermaLink="false">{guid}</guid>\n'
            "\t\t<description></description>\n"
            f"\t\t<content:encoded>{cdata(body)}</content:encoded>\n"
            f"\t\t<excerpt:encoded>{cdata(excerpt)}</excerpt:encoded>\n"
            f"\t\t<wp:post_id>{wp_id}</wp:post_id>\n"
            f"\t\t<wp:post_date>{cdata(mysql(date_local))}</wp:post_date>\n"
            f"\t\t<wp:post_date_gmt>{cdata(post_date_gmt)}</wp:post_date_gmt>\n"
            f"\t\t<wp:post_modified>{cdata(mysql(modified_gmt + UTC_OFFSET))}</wp:post_modified>\n"
            f"\t\t<wp:post_modified_gmt>{cdata(mysql(modified_gmt))}</wp:post_modified_gmt>\n"
            f"\t\t<wp:comment_status>{cdata(comment_status)}</wp:comment_status>\n"
            f"\t\t<wp:ping_status>{cdata(comment_status)}</wp:ping_status>\n"
            f"\t\t<wp:post_name>{cdata(slug)}</wp:post_name>\n"
            f"\t\t<wp:status>{cdata(status)}</wp:status>\n"
            f"\t\t<wp:post_parent>{parent_id}</wp:post_parent>\n"
            f"\t\t<wp:menu_order>{page_k + 1 if is_page else 0}</wp:menu_order>\n"
            f"\t\t<wp:post_type>{cdata(post_type)}</wp:post_type>\n"
            f"\t\t<wp:post_password>{cdata(password)}</wp:post_password>\n"
            f"\t\t<wp:is_sticky>{sticky}</wp:is_sticky>\n"
        ]
        if not is_page:
            for term_id in sorted(rng.sample(range(1, len(CATEGORIES) + 1), rng.choice((1, 1, 2)))):
                name, cat_slug, _, _ = CATEGORIES[term_id - 1]
                parts.append(
                    f'\t\t\t\t\t\t\t\t\t\t<category domain="category" nicename="{cat_slug}">'
                    f"{cdata(name)}</category>\n"
                )
            for _, name, tag_slug, _ in rng.sample(self.tags, rng.randint(0, 5)):
                parts.append(
                    f'\t\t<category domain="post_tag" nicename="{tag_slug}">'
                    f"{cdata(name)}</category>\n"
                )
        meta = [("_edit_last", str(author[0]))]
        if is_page:
            meta.append(("_wp_page_template", "default"))
        elif status == "publish" and rng.random() < 0.005:
            meta.append(("_wp_old_slug", f"{slug}-draft"))
            t["old_slugs"] += 1
        for key, value in meta:
            parts.append(
                "\t\t\t\t\t\t<wp:postmeta>\n"
                f"\t\t<wp:meta_key>{cdata(key)}</wp:meta_key>\n"
                f"\t\t<wp:meta_value>{cdata(value)}</wp:meta_value>\n"
                "\t\t</wp:postmeta>\n"
            )
        out.write("".join(parts))
        if self.comment_counts[slot]:
            self._comments(out, self.comment_counts[slot], date_gmt, is_page)
        out.write("\t\t\t\t\t</item>\n")

    def _title(self) -> str:
        rng = self.rng
        words = rng.choices(WORDS[60:], k=rng.randint(2, 7))
        title = " ".join(words).capitalize()
        roll = rng.random()
        if roll < 0.02:
            title = f"Q&A: {title}"
        elif roll < 0.04:
            title = f"{title} at the café in Zürich"
        elif roll < 0.05:
            title = f"{title} — “quoted”"
        return title

    def _unique_slug(self, slug: str) -> str:
        candidate, n = slug, 2
        while candidate in self.used_slugs:
            candidate, n = f"{slug}-{n}", n + 1
        self.used_slugs.add(candidate)
        return candidate

    def _paragraph(self) -> str:
        rng = self.rng
        text = " ".join(rng.choices(self.sentences, k=rng.randint(2, 6)))
        roll = rng.random()
        if roll < 0.15:
            text += f' See <a href="{SITE}/{rng.randint(2010, 2024)}/">the archive</a>.'
        elif roll < 0.25:
            text = f"<em>{text[:40]}</em>{text[40:]}"
        elif roll < 0.3:
            text = f"{text} <strong>Update:</strong> corrected on {rng.randint(1, 28)} May."
        return text

    def _body(self, wp_id: int, slot: int, is_page: bool) -> str:
        rng, t = self.rng, self.t
        gutenberg = rng.random() < 0.8
        paragraphs = [self._paragraph() for _ in range(rng.randint(3, 6))]
        extras: list[tuple[str, str]] = []  # (kind, html) inserted after the 2nd paragraph
        if rng.random() < 0.02:
            n = rng.randint(1, 9999)
            year = 2010 + slot * 15 // self.total_items
            extras.append((
                "caption",
                f'[caption id="attachment_{n}" align="alignright" width="300"]'
                f'<img class="size-medium wp-image-{n}" src="{SITE}/wp-content/uploads/'
                f'{year}/0{rng.randint(1, 9)}/photo-{n}-300x200.jpg"'
                f' alt="A photograph" width="300" height="200" /> The caption, with '
                f"<em>markup</em>.[/caption]",
            ))  # fmt: skip
            t["shortcode_caption"] += 1
        if rng.random() < 0.01:
            if rng.random() < 0.5:
                ids = ",".join(str(rng.randint(1, 9999)) for _ in range(rng.randint(2, 6)))
                extras.append(("gallery", f'[gallery ids="{ids}" columns="3"]'))
            else:
                extras.append(("gallery", "[gallery columns=2]"))
            t["shortcode_gallery"] += 1
        if rng.random() < 0.005:
            extras.append(("code", f"<pre><code>{CODE_WITH_CDATA_END}</code></pre>"))
            t["fields_with_cdata_end"] += 1
        more = not is_page and rng.random() < 0.03
        t["more_tags"] += more
        t["bodies_gutenberg" if gutenberg else "bodies_classic"] += 1
        if gutenberg:
            blocks = [
                f"<!-- wp:paragraph -->\n<p>{p}</p>\n<!-- /wp:paragraph -->" for p in paragraphs
            ]
            if rng.random() < 0.1:
                blocks.insert(
                    1,
                    '<!-- wp:heading -->\n<h2 class="wp-block-heading">'
                    f"{rng.choice(self.sentences)[:-1]}</h2>\n<!-- /wp:heading -->",
                )
            if rng.random() < 0.05:
                blocks.append(
                    '<!-- wp:quote -->\n<blockquote class="wp-block-quote"><!-- wp:paragraph -->\n'
                    f"<p>{rng.choice(self.sentences)}</p>\n<!-- /wp:paragraph --></blockquote>\n"
                    "<!-- /wp:quote -->"
                )
            for kind, html in extras:
                if kind == "code":
                    html = html.replace("<pre>", '<pre class="wp-block-code">')
                    block = f"<!-- wp:code -->\n{html}\n<!-- /wp:code -->"
                else:
                    block = f"<!-- wp:shortcode -->\n{html}\n<!-- /wp:shortcode -->"
                blocks.insert(2, block)
            if more:
                blocks.insert(1, "<!-- wp:more -->\n<!--more-->\n<!-- /wp:more -->")
            return "\n\n".join(blocks)
        # Classic editor: bare paragraphs, WordPress adds <p> at render time (wpautop).
        for _, html in extras:
            paragraphs.insert(2, html)
        if more:
            paragraphs[0] += "\n<!--more-->"
        return "\n\n".join(paragraphs)

    def _comments(self, out: Sink, count: int, post_gmt: datetime, on_page: bool) -> None:
        """Write one item's comments, each as soon as it is made: memory stays flat however
        busy the thread. Replies pick a parent among the last 40 comments."""
        rng, t = self.rng, self.t
        earlier: deque[tuple[int, int]] = deque(maxlen=40)  # (wp id, depth)
        when = post_gmt
        statuses, weights = list(STATUS_WEIGHTS), list(STATUS_WEIGHTS.values())
        for _ in range(count):
            comment_id = self.comment_id
            self.comment_id += 1
            when = min(when + timedelta(seconds=int(rng.expovariate(1 / 21600)) + 30), EXPORTED_AT)
            parent, depth = 0, 1
            if earlier and rng.random() < self.reply_p:
                open_ = [c for c in earlier if c[1] < MAX_DEPTH]
                if open_:
                    # Half the replies answer one of the last few comments: long chains form.
                    pick = rng.choice(open_[-3:] if rng.random() < 0.5 else open_)
                    parent, depth = pick[0], pick[1] + 1
            status = rng.choices(statuses, weights)[0]
            kind = "comment"
            user_id = 0
            email_domain = rng.choice(("example.org", "example.net", "example.com"))
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            name = f"{first} {last}"
            email = f"{slugify(first)}.{slugify(last)}{rng.randint(1, 99)}@{email_domain}"
            url = f"https://{email_domain}/~{slugify(first)}" if rng.random() < 0.2 else ""
            text = "\n\n".join(
                " ".join(rng.choices(self.sentences, k=rng.randint(1, 4)))
                for _ in range(rng.choice((1, 1, 1, 2, 3)))
            )
            roll = rng.random()
            if parent == 0 and roll < 0.006:
                kind = "pingback" if roll < 0.004 else "trackback"
                name = f"Another Blog &raquo; {rng.choice(self.sentences)[:30]}"
                email, url = "", f"https://blog.example.net/{rng.randint(1000, 9999)}/"
                text = f"[&#8230;] {rng.choice(self.sentences)} [&#8230;]"
            elif roll < 0.016:
                author = rng.choice(AUTHORS)
                user_id, name, email, url = author[0], author[3], author[2], SITE
                status = "1"
                t["comments_by_site_author"] += 1
            elif roll < 0.046:
                kind = ""  # pre-5.5 comments keep an empty comment_type
            if roll > 0.998:
                text += f"\n\n<code>{CODE_WITH_CDATA_END}</code>"
                t["fields_with_cdata_end"] += 1
            elif roll > 0.99:
                text = f"<blockquote>{text}</blockquote>\n\n<strong>Agreed</strong>, mostly."
            if rng.random() < 0.8:
                ip = f"203.0.113.{rng.randint(1, 254)}"
                t["comment_ipv4"] += 1
            else:
                ip = str(ipaddress.IPv6Address((0x20010DB8 << 96) | rng.getrandbits(96)))
                t["comment_ipv6"] += 1
            earlier.append((comment_id, depth))
            t[f"comments_status_{status}"] += 1
            t[f"comments_type_{kind or 'empty'}"] += 1
            t["comments_on_pages" if on_page else "comments_on_posts"] += 1
            t["replies" if parent else "top_level"] += 1
            self.depths[depth] += 1
            local = when + UTC_OFFSET
            out.write(
                "\t\t\t\t\t\t\t<wp:comment>\n"
                f"\t\t\t<wp:comment_id>{comment_id}</wp:comment_id>\n"
                f"\t\t\t<wp:comment_author>{cdata(name)}</wp:comment_author>\n"
                f"\t\t\t<wp:comment_author_email>{cdata(email)}</wp:comment_author_email>\n"
                f"\t\t\t<wp:comment_author_url>{url}</wp:comment_author_url>\n"
                f"\t\t\t<wp:comment_author_IP>{cdata(ip)}</wp:comment_author_IP>\n"
                f"\t\t\t<wp:comment_date>{cdata(mysql(local))}</wp:comment_date>\n"
                f"\t\t\t<wp:comment_date_gmt>{cdata(mysql(when))}</wp:comment_date_gmt>\n"
                f"\t\t\t<wp:comment_content>{cdata(text)}</wp:comment_content>\n"
                f"\t\t\t<wp:comment_approved>{cdata(status)}</wp:comment_approved>\n"
                f"\t\t\t<wp:comment_type>{cdata(kind)}</wp:comment_type>\n"
                f"\t\t\t<wp:comment_parent>{parent}</wp:comment_parent>\n"
                f"\t\t\t<wp:comment_user_id>{user_id}</wp:comment_user_id>\n"
                "\t\t\t\t\t\t\t</wp:comment>\n"
            )

    def tally(self, path: Path, out: Sink, seconds: float) -> dict:
        t = self.t
        statuses = {s: t[f"comments_status_{s}"] for s in STATUS_WEIGHTS}
        return {
            "file": str(path),
            "seed": self.seed,
            "bytes": out.bytes,
            "sha256": out.sha256.hexdigest(),
            "seconds": round(seconds, 2),
            "site": SITE,
            "utc_offset": "-05:00",
            "source_timezone": SOURCE_TIMEZONE,
            "authors": t["authors"],
            "categories": t["categories"],
            "categories_with_parent": t["categories_with_parent"],
            "tags": t["tags"],
            "wp_terms": t["wp_terms"],
            "items": self.total_items,
            "posts": t["posts"],
            "posts_by_status": {s: t[f"posts_{s}"] for s in ("publish", "future", "draft")},
            "password_protected": t["password_protected"],
            "sticky": t["sticky"],
            "pages": t["pages"],
            "pages_with_parent": t["pages_with_parent"],
            "pages_by_depth": {d: t[f"page_depth_{d}"] for d in (1, 2, 3) if t[f"page_depth_{d}"]},
            "pages_before_their_parent": t["pages_before_their_parent"],
            "pages_with_utf8_slug": t["pages_with_utf8_slug"],
            "comments": self.comment_id - 1,
            "comments_on_posts": t["comments_on_posts"],
            "comments_on_pages": t["comments_on_pages"],
            "comments_by_status": statuses,
            "comments_by_type": {
                k: t[f"comments_type_{k or 'empty'}"]
                for k in ("comment", "", "pingback", "trackback")
            },
            "top_level": t["top_level"],
            "replies": t["replies"],
            "comment_depths": dict(sorted(self.depths.items())),
            "comments_by_site_author": t["comments_by_site_author"],
            "comment_ips": {"ipv4": t["comment_ipv4"], "ipv6": t["comment_ipv6"]},
            "fields_with_cdata_end": t["fields_with_cdata_end"],
            "bodies": {"gutenberg": t["bodies_gutenberg"], "classic": t["bodies_classic"]},
            "shortcodes": {"caption": t["shortcode_caption"], "gallery": t["shortcode_gallery"]},
            "more_tags": t["more_tags"],
            "old_slugs": t["old_slugs"],
            # What a complete import should leave in Broadsheet's tables (docs/wxr-plan.md §4).
            "broadsheet": {
                "articlepages": t["posts"],
                "standardpages": t["pages"],
                "comments_by_status": {
                    "approved": statuses["1"],
                    "pending": statuses["0"],
                    "spam": statuses["spam"],
                    "trash": statuses["trash"],
                },
                "comments_by_kind": {
                    "comment": t["comments_type_comment"] + t["comments_type_empty"],
                    "pingback": t["comments_type_pingback"],
                    "trackback": t["comments_type_trackback"],
                },
                "replies": t["replies"],
            },
        }


def generate(path: Path, *, posts: int, comments: int, seed: int = 42) -> dict:
    """Write the file and its tally (path + ".json"); return the tally."""
    start = time.perf_counter()
    generator = Generator(posts=posts, comments=comments, seed=seed)
    with path.open("wb", buffering=1 << 20) as fp:
        out = Sink(fp)
        generator.write(out)
    tally = generator.tally(path, out, time.perf_counter() - start)
    Path(f"{path}.json").write_text(json.dumps(tally, indent=2, ensure_ascii=False) + "\n")
    return tally


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.partition("\n")[0])
    parser.add_argument(
        "out", type=Path, help="the .xml file to write (its tally goes to OUT.json)"
    )
    parser.add_argument("--posts", type=int, default=10_000)
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    tally = generate(args.out, posts=args.posts, comments=args.comments, seed=args.seed)
    print(json.dumps(tally, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
