"""The demo publication: a site, two sections, two articles and a discussion to read.

Idempotent: everything is looked up by slug (or submission key) first, so loading it twice
changes nothing. Used by ``broadsheet demo`` and by the tests.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from wagtail.coreutils import get_supported_content_language_variant
from wagtail.models import Locale, Page, Site

from .models import ArticleAuthor, ArticlePage, HomePage, Person, Section

TAGLINE = "Independent reporting and international solidarity"

SEED_TITLE = "Greetings from Lugansk Communists to Workers World Party 2017 conference"
SEED_SLUG = "greetings-from-lugansk-communists-to-workers-world-party-2017-conference"

SEED_STANDFIRST = (
    "Solidarity message to the national conference of Workers World Party, held in Newark, "
    "New Jersey on November 18-19, 2017."
)

SEED_PARAGRAPHS = [
    "To the participants of the Workers World Party conference:",
    "Comrades, I would like to convey to you the greetings of the Communist Party of the Lugansk "
    "People’s Republic, as well as from a number of public organizations of the Lugansk People’s "
    "Republic, who support and understand the importance of international unity of the world’s "
    "concerned forces in the fight against fascism, imperialism and racism!",
    "This year we celebrated the 100th anniversary of the Great October Socialist Revolution. "
    "This event changed not only the history of our people; it was a watershed in the history of "
    "the entire world. Now we know that no matter how insignificant our efforts may appear "
    "against the backdrop of the power of the imperialist states, we can win – as the communist "
    "Bolsheviks did in 1917. Truth was on their side, and therefore, in the end, they were able "
    "to come to power and defend the country’s independence and unity, end the civil war, revive "
    "the economy of the state, and build a fundamentally new country where there was no place "
    "for class inequality and oppression.",
    "The dream of many generations of fighters for justice became a reality in 1917. And this "
    "example inspires us to continue the struggle for the victory of the ideas of equality, "
    "justice and internationalism. Perhaps our new 1917 will not come soon, perhaps it will come "
    "tomorrow — we cannot know this. But what we know for sure is that we must not stop our work "
    "and our struggle for a minute.",
    "I’d like to tell you that people in Lugansk closely follow events in the United States. "
    "They understand the difference between the unjust power politics of the U.S. and the "
    "aspirations of its people. We believe that your struggle for people’s rights will be "
    "crowned with success. We express our solidarity and wish you success in your difficult "
    "work.",
]

SEED_SIGNATURE = (
    "With fraternal greetings,\n"
    "\n"
    "Leader of the Antifascist International Solidarity Forum (AISForum),\n"
    "Head of the Lugansk Communists,\n"
    "Maxim Chalenko"
)

REPORT_TITLE = "Messages from abroad open a weekend of solidarity in Newark"
REPORT_SLUG = "messages-from-abroad-open-a-weekend-of-solidarity-in-newark"
REPORT_STANDFIRST = (
    "Greetings from Lugansk and elsewhere set the tone for two days of discussion on "
    "anti-war work, migrant rights and international links."
)
REPORT_PARAGRAPHS = [
    "The national conference of Workers World Party met in Newark, New Jersey, on November "
    "18 and 19. Before the first panel, organizers read out messages of solidarity sent by "
    "parties and movements abroad.",
    "Among them was a greeting from the Communists of the Lugansk People’s Republic, marking "
    "the centenary of the October Revolution and thanking people in the United States who "
    "follow events in Donbass. The full text, in English translation, is published on this "
    "site.",
    "Sessions over the weekend took up opposition to new wars, defence of immigrant workers "
    "facing raids, and how to keep in touch with organizations abroad when news from their "
    "regions rarely reaches the mainstream press.",
    "Several speakers stressed that translation is part of that work: a message read aloud in "
    "a hall in Newark reaches far more readers once it is written down, translated and shared.",
]

SECTIONS = [
    (
        "International solidarity",
        "international-solidarity",
        "Messages, statements and reports from movements around the world.",
        1,
    ),
    ("News", "news", "Reports from meetings, protests and conferences.", 2),
]

# (key, parent key, name, email, url, text, created) — approved unless marked pending.
COMMENTS = [
    (
        "1",
        None,
        "Dolores Vega",
        "dolores.vega@example.org",
        "",
        "Thank you for translating this. It means a lot to hear directly from people in Lugansk "
        "rather than through what the big papers choose to print.",
        datetime(2017, 11, 20, 16, 12, tzinfo=UTC),
    ),
    (
        "2",
        "1",
        "Anya Petrenko",
        "anya.p@example.net",
        "https://example.net/anya",
        "The Russian original is a little more formal – “с братским приветом” is a set phrase – "
        "but the translation keeps the tone well.",
        datetime(2017, 11, 20, 18, 40, tzinfo=UTC),
    ),
    (
        "3",
        "2",
        "Dolores Vega",
        "dolores.vega@example.org",
        "",
        "Good to know, thank you! I wondered how the sign-off reads in Russian.",
        datetime(2017, 11, 20, 19, 5, tzinfo=UTC),
    ),
    (
        "4",
        "1",
        "Tom Kerrigan",
        "tkerrigan@example.com",
        "",
        "Agreed. Reading it alongside the conference reports gives a much fuller picture of the "
        "weekend.",
        datetime(2017, 11, 21, 8, 27, tzinfo=UTC),
    ),
    (
        "5",
        None,
        "Marcus Bell",
        "marcus.bell@example.org",
        "https://example.org/marcus",
        "Was a reply sent back from the conference? It would be good to publish that here too.",
        datetime(2017, 11, 21, 13, 2, tzinfo=UTC),
    ),
    (
        "6",
        "5",
        "Ruth Okafor",
        "ruth.okafor@example.com",
        "",
        "I believe a message was adopted on the Sunday. Hopefully it will be posted soon.",
        datetime(2017, 11, 21, 15, 48, tzinfo=UTC),
    ),
    (
        "7",
        None,
        "Sam Lindqvist",
        "sam.lindqvist@example.org",
        "",
        "Shared this with our reading group. The line about “our new 1917” started a long "
        "discussion about patience and persistence.",
        datetime(2017, 11, 22, 20, 15, tzinfo=UTC),
    ),
    (
        "8",
        None,
        "Joe Pending",
        "joe@example.com",
        "",
        "Great read, passing it on.",
        datetime(2017, 11, 23, 9, 30, tzinfo=UTC),
    ),
]
PENDING_COMMENTS = {"8"}


@dataclass(frozen=True)
class ArticleSpec:
    slug: str
    title: str
    standfirst: str
    paragraphs: list[str]
    date: datetime
    authors: list[str]  # Person slugs
    sections: list[str]  # Section slugs
    tags: list[str]
    signature: str = ""
    translator: str = ""
    original_language: str = ""


ARTICLES = [
    ArticleSpec(
        slug=SEED_SLUG,
        title=SEED_TITLE,
        standfirst=SEED_STANDFIRST,
        paragraphs=SEED_PARAGRAPHS,
        date=datetime(2017, 11, 20, 12, 0, tzinfo=UTC),
        authors=["maxim-chalenko"],
        sections=["international-solidarity"],
        tags=["solidarity", "Lugansk", "Donbass", "WWP conference"],
        signature=SEED_SIGNATURE,
        translator="Greg Butterfield",
        original_language="ru",
    ),
    ArticleSpec(
        slug=REPORT_SLUG,
        title=REPORT_TITLE,
        standfirst=REPORT_STANDFIRST,
        paragraphs=REPORT_PARAGRAPHS,
        date=datetime(2017, 11, 22, 10, 0, tzinfo=UTC),
        authors=["news-desk"],
        sections=["news", "international-solidarity"],
        tags=["solidarity", "WWP conference", "Newark"],
    ),
]

PEOPLE = [
    (
        "Maxim Chalenko",
        "maxim-chalenko",
        "Head of the Lugansk Communists and leader of the Antifascist International Solidarity "
        "Forum (AISForum).",
    ),
    ("News desk", "news-desk", "Reports by the editors of this publication."),
]


def _site_address(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if not parts.hostname:
        raise ValueError(f"Not an absolute URL: {base_url!r}")
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def _tree_root() -> Page:
    """Wagtail's root node; made again (with the default locale) when a database flush, as
    between transactional tests, has removed what Wagtail's migrations created."""
    root = Page.get_first_root_node()
    if root is not None:
        return root
    Locale.objects.get_or_create(
        language_code=get_supported_content_language_variant(settings.LANGUAGE_CODE)
    )
    return Page.add_root(instance=Page(title="Root", slug="root"))


def _home_page(site_name: str) -> HomePage:
    """The HomePage under the tree root, replacing Wagtail's “Welcome” placeholder page."""
    root = _tree_root()
    home = HomePage.objects.child_of(root).first()
    if home is not None:
        return home
    # The placeholder from Wagtail's initial migration: a plain Page with no children. Site
    # rows that point at it go with it (CASCADE); ours is written just after.
    for welcome in Page.objects.child_of(root).filter(slug="home"):
        if welcome.specific_class is Page and welcome.numchild == 0:
            welcome.delete()
    slug = "home" if not Page.objects.child_of(root).filter(slug="home").exists() else "front"
    home = root.add_child(instance=HomePage(title=site_name, slug=slug, tagline=TAGLINE))
    home.save_revision().publish()
    return home


def _site(home: HomePage, base_url: str, site_name: str) -> Site:
    hostname, port = _site_address(base_url)
    site = (
        Site.objects.filter(hostname=hostname, port=port).first()
        or Site.objects.filter(is_default_site=True).first()
        or Site(hostname=hostname, port=port)
    )
    changes = {
        "hostname": hostname,
        "port": port,
        "root_page_id": home.pk,
        "is_default_site": True,
        "site_name": site_name,
    }
    if site.pk is None or any(getattr(site, k) != v for k, v in changes.items()):
        Site.objects.filter(is_default_site=True).exclude(pk=site.pk).update(is_default_site=False)
        for key, value in changes.items():
            setattr(site, key, value)
        site.save()
    return site


def _article(
    home: HomePage, spec: ArticleSpec, people: dict[str, Person], sections: dict[str, Section]
) -> ArticlePage:
    existing = ArticlePage.objects.child_of(home).filter(slug=spec.slug).first()
    if existing is not None:
        return existing
    article = ArticlePage(
        title=spec.title,
        slug=spec.slug,
        standfirst=spec.standfirst,
        body="".join(f"<p>{escape(p, quote=False)}</p>" for p in spec.paragraphs),
        signature=spec.signature,
        translator=spec.translator,
        original_language=spec.original_language,
        language="en",
        date=spec.date,
        live=False,
    )
    article.article_authors = [
        ArticleAuthor(person=people[slug], sort_order=n) for n, slug in enumerate(spec.authors)
    ]
    article.sections = [sections[slug] for slug in spec.sections]
    article.tags.add(*spec.tags)
    home.add_child(instance=article)
    article.save_revision().publish()
    article.refresh_from_db()
    return article


def _discussion(article: ArticlePage) -> int:
    from broadsheet.comments import services
    from broadsheet.comments.models import Comment

    thread = services.sync_thread(
        url=article.get_url() or article.url_path,
        page_id=article.pk,
        title=article.title,
        is_open=article.accepts_comments(),
    )
    made: dict[str, Comment] = {}
    for key, parent_key, name, email, url, text, created in COMMENTS:
        parent = made.get(parent_key) if parent_key else None
        made[key], _ = Comment.objects.get_or_create(
            submission_key=f"demo-{key}",
            defaults=dict(
                thread=thread,
                parent=parent,
                status=(
                    Comment.Status.PENDING if key in PENDING_COMMENTS else Comment.Status.APPROVED
                ),
                author_name=name,
                author_email=email,
                author_url=url,
                text=text,
                created_at=created,
            ),
        )
    return Comment.objects.visible().for_thread(thread).count()


def load_demo(*, base_url: str) -> str:
    """Create (or leave as they are) the demo site, sections, people, articles and comments.

    Rule: idempotent — every object is found by its slug or key before it is created, so a
    second load duplicates nothing. Returns a one-line summary.
    """
    site_name = settings.WAGTAIL_SITE_NAME
    with transaction.atomic():
        home = _home_page(site_name)
        _site(home, base_url, site_name)
        sections = {}
        for name, slug, description, order in SECTIONS:
            sections[slug], _ = Section.objects.get_or_create(
                slug=slug,
                defaults={"name": name, "description": description, "sort_order": order},
            )
        people = {}
        for name, slug, bio in PEOPLE:
            people[slug], _ = Person.objects.get_or_create(
                slug=slug, defaults={"name": name, "bio": bio}
            )
        articles = [_article(home, spec, people, sections) for spec in ARTICLES]
        comments = _discussion(articles[0])
    return f"{len(articles)} articles, {len(sections)} sections, {comments} comments"


def reset_demo_editor() -> tuple[str, str]:
    """Create or update the superuser “editor” with a new random password; return both.

    Rule: the demo never ships a known password — each run prints a fresh one.
    """
    username = "editor"
    password = secrets.token_urlsafe(12)
    user_model = get_user_model()
    user, _ = user_model.objects.get_or_create(
        username=username, defaults={"email": "editor@example.org"}
    )
    user.is_active = True
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    return username, password
