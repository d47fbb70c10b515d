"""The publication: pages (home, articles) and snippets (sections, people).

Wagtail models are defined here and used only within this app (the comments engine has no
Wagtail imports: a thread is keyed by the article's URL and page id). Everything a
reader may see goes through ``ArticlePage.objects.published()``; listings, feeds, search and
the sitemap all start from it.

URL scheme (WordPress-style, served by ``HomePage.route`` and its routable sub-pages)::

    /                          latest articles (?page=N)
    /2017/11/20/<slug>/        an article (its publication date, in TIME_ZONE)
    /<slug>/                   301 to the dated address
    /2017/  /2017/11/  /2017/11/20/    date archives
    /section/<slug>/  /tag/<slug>/  /author/<slug>/
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.conf import settings
from django.core.paginator import InvalidPage, Paginator
from django.core.paginator import Page as PaginatorPage
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Prefetch, Q, prefetch_related_objects
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponsePermanentRedirect,
    HttpResponseRedirect,
)
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.dates import MONTHS
from django.utils.functional import cached_property
from django.utils.safestring import SafeString
from django.utils.translation import get_language_info, to_locale
from modelcluster.contrib.taggit import ClusterTaggableManager
from modelcluster.fields import ParentalKey, ParentalManyToManyField
from taggit.models import Tag, TaggedItemBase
from wagtail.admin.forms import WagtailAdminPageForm
from wagtail.admin.panels import (
    FieldPanel,
    FieldRowPanel,
    InlinePanel,
    MultiFieldPanel,
    ObjectList,
    PageChooserPanel,
    TabbedInterface,
    TitleFieldPanel,
)
from wagtail.admin.widgets.slug import SlugInput
from wagtail.contrib.routable_page.models import RoutablePageMixin, re_path
from wagtail.fields import RichTextField
from wagtail.models import Orderable, Page, PageManager, Site
from wagtail.query import PageQuerySet
from wagtail.search import index
from wagtail.snippets.models import register_snippet
from wagtail.url_routing import RouteResult

from broadsheet.comments.conf import FIRST
from broadsheet.core import html as html_policy

from . import structured_data

DEFAULT_PAGE_SIZE = 10
# First path segments the home page routes itself (see HomePage's routes).
ROUTED_PREFIXES = frozenset({"section", "tag", "author"})

language_code_validator = RegexValidator(
    r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$",
    "Use a language code such as “en”, “ru” or “pt-br”.",
)


def page_size() -> int:
    """Articles per listing page: ``BROADSHEET_PAGE_SIZE`` if set, else 10."""
    return int(getattr(settings, "BROADSHEET_PAGE_SIZE", DEFAULT_PAGE_SIZE))


def paginate(items: Any, request: HttpRequest, *, per_page: int | None = None) -> PaginatorPage:
    """One page of a listing, chosen by ``?page=N``.

    Rule: a page number that is not a positive whole number, or lies past the last page, is a
    404 (never a 500, and never a silent clamp that would give crawlers endless duplicate URLs).
    Page 1 of an empty listing exists.
    """
    paginator = Paginator(items, per_page or page_size())
    try:
        return paginator.page(request.GET.get("page", "1"))
    except InvalidPage as exc:
        raise Http404("No such page of results.") from exc


def language_name(code: str) -> str:
    """English name of a language code (“ru” → “Russian”), or the code itself if unknown."""
    if not code:
        return ""
    for candidate in (code, code.split("-")[0]):
        try:
            return get_language_info(candidate)["name"]
        except KeyError:
            continue
    return code


# --- Snippets ------------------------------------------------------------------------------------


class SectionQuerySet(models.QuerySet):
    def in_navigation(self) -> SectionQuerySet:
        """Sections the masthead lists, in the editors' order."""
        return self.filter(show_in_navigation=True).order_by("sort_order", "name")


@register_snippet
class Section(models.Model):
    """A department of the publication (“International solidarity”, “News”)."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100, unique=True, allow_unicode=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="children",
        help_text="A broader section this one belongs to (WordPress category hierarchy). "
        "Addresses stay flat: /section/<slug>/.",
    )
    description = models.TextField(blank=True, help_text="Shown on the section's page and feed.")
    show_in_navigation = models.BooleanField(default=True)
    sort_order = models.PositiveSmallIntegerField(
        default=0, help_text="Lower numbers come first in the site navigation."
    )

    objects = SectionQuerySet.as_manager()

    panels = [
        FieldPanel("name"),
        FieldPanel("slug", widget=SlugInput),
        FieldPanel("parent"),
        FieldPanel("description"),
        FieldRowPanel([FieldPanel("show_in_navigation"), FieldPanel("sort_order")]),
    ]

    class Meta:
        ordering = ["sort_order", "name"]

    def __str__(self) -> str:
        return self.name


@register_snippet
class Person(index.Indexed, models.Model):
    """Someone credited in a byline. Translators are credited by name on the article."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=100, unique=True, allow_unicode=True)
    bio = models.TextField(blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="bylines",
        verbose_name="account",
        help_text="The account of this person, if they have one: its email address gets the "
        "comments on their articles (Settings > Discussion).",
    )

    panels = [
        FieldPanel("name"),
        FieldPanel("slug", widget=SlugInput),
        FieldPanel("bio"),
        FieldPanel("user"),
    ]
    search_fields = [index.SearchField("name"), index.AutocompleteField("name")]

    class Meta:
        ordering = ["name"]
        verbose_name = "person"
        verbose_name_plural = "people"

    def __str__(self) -> str:
        return self.name


class ArticleTag(TaggedItemBase):
    content_object = ParentalKey(
        "publishing.ArticlePage", on_delete=models.CASCADE, related_name="tagged_items"
    )


class ArticleAuthor(Orderable):
    """One byline credit, in the order the editors gave."""

    page = ParentalKey(
        "publishing.ArticlePage", on_delete=models.CASCADE, related_name="article_authors"
    )
    person = models.ForeignKey(Person, on_delete=models.PROTECT, related_name="credits")

    panels = [FieldPanel("person")]

    class Meta(Orderable.Meta):
        verbose_name = "author"


# --- Read rules ----------------------------------------------------------------------------------


class ArticlePageQuerySet(PageQuerySet):
    def published(self) -> ArticlePageQuerySet:
        """What readers may see: live pages (published, not scheduled for later) outside any
        privacy restriction, and not past their expiry time even if Wagtail's
        ``publish_scheduled`` command has not run yet. Every listing, feed, search and sitemap
        uses this; ``ArticlePage.route`` applies the same expiry rule to the page itself."""
        now = timezone.now()
        return self.live().public().filter(Q(expire_at__isnull=True) | Q(expire_at__gt=now))

    def newest_first(self) -> ArticlePageQuerySet:
        return self.order_by("-date", "-pk")

    def for_listing(self) -> ArticlePageQuerySet:
        """Newest first, with bylines, sections and tags fetched in a constant number of
        queries however many articles the page lists."""
        return self.newest_first().prefetch_related(
            Prefetch("article_authors", queryset=ArticleAuthor.objects.select_related("person")),
            "sections",
            Prefetch("tagged_items", queryset=ArticleTag.objects.select_related("tag")),
        )

    def in_section(self, section: Section) -> ArticlePageQuerySet:
        return self.filter(sections=section)

    def tagged(self, tag: Tag) -> ArticlePageQuerySet:
        return self.filter(tagged_items__tag=tag)

    def by_author(self, person: Person) -> ArticlePageQuerySet:
        return self.filter(article_authors__person=person).distinct()

    def in_period(
        self, year: int, month: int | None = None, day: int | None = None
    ) -> ArticlePageQuerySet:
        """Articles dated within a calendar year, month or day in the site's time zone.
        Raises ValueError for a date that does not exist."""
        tz = timezone.get_current_timezone()
        start = datetime(year, month or 1, day or 1, tzinfo=tz)
        if day:
            end = start + timedelta(days=1)
        elif month:
            end = datetime(year + month // 12, month % 12 + 1, 1, tzinfo=tz)
        else:
            end = datetime(year + 1, 1, 1, tzinfo=tz)
        return self.filter(date__gte=start, date__lt=end)


ArticlePageManager = PageManager.from_queryset(ArticlePageQuerySet)


# --- Pages ---------------------------------------------------------------------------------------


def chrome_context(request: HttpRequest, *, home: HomePage | None) -> dict[str, Any]:
    """What every public page shows around its content: the masthead's section navigation
    and a link home. One query, whatever the page."""
    return {
        "home_page": home,
        "nav_sections": list(Section.objects.in_navigation()),
    }


def home_for_request(request: HttpRequest) -> HomePage | None:
    """The HomePage at the root of the site that serves this request, if there is one."""
    site = Site.find_for_request(request)
    if site is None:
        return None
    return HomePage.objects.filter(pk=site.root_page_id).first()


class ViewRestrictionsOnce:
    """For page models: the view restrictions on the page and its ancestors are fetched once
    per page object (an object lives for one request). Wagtail's own check before serving,
    the page cache and the discussion all ask, and each asking cost two queries. A change of
    restriction drops the memo of the page object it came through (page_cache.py)."""

    def get_view_restrictions(self):
        restrictions = getattr(self, "_view_restrictions", None)
        if restrictions is None:
            restrictions = super().get_view_restrictions()
            restrictions._fetch_all()  # later iterations and .exists() use these rows
            self._view_restrictions = restrictions
        return restrictions

    @staticmethod
    def forget(page: Page) -> None:
        """Drop the memo on ``page``: any page object, as a restriction's ``page`` is a plain
        ``Page`` (the page cache calls this when a restriction changes)."""
        page.__dict__.pop("_view_restrictions", None)


class HomePage(ViewRestrictionsOnce, RoutablePageMixin, Page):
    """The front page: latest articles, and the archives that hang off it."""

    tagline = models.CharField(
        max_length=255, blank=True, help_text="A line under the masthead and in the site feed."
    )

    content_panels = Page.content_panels + [FieldPanel("tagline")]

    parent_page_types = ["wagtailcore.Page"]
    subpage_types = ["publishing.ArticlePage", "publishing.StandardPage"]
    template = "publishing/home_page.html"

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context(request, *args, **kwargs)
        context.update(chrome_context(request, home=self))
        return context

    # Article addresses -----------------------------------------------------------------------

    def route(self, request: HttpRequest, path_components: list[str]) -> RouteResult:
        if self.live and _is_article_path(path_components):
            return self._route_dated_article(request, path_components)
        if path_components and self._has_standard_child(path_components[0]):
            # /about/ is a page of the tree, not an article's short address: skip the routable
            # /<slug>/ rule and let Wagtail walk the tree.
            return Page.route(self, request, path_components)
        return super().route(request, path_components)

    def _has_standard_child(self, slug: str) -> bool:
        # The home page's own addresses (/tag/…, /section/…, /2017/…) come first.
        if slug in ROUTED_PREFIXES or (len(slug) == 4 and slug.isdigit()):
            return False
        return StandardPage.objects.child_of(self).filter(slug=slug).exists()

    def _route_dated_article(self, request: HttpRequest, components: list[str]) -> RouteResult:
        """/YYYY/MM/DD/<slug>/ serves the article; a wrong date redirects to the right one."""
        article = ArticlePage.objects.child_of(self).filter(slug=components[3]).first()
        if article is None:
            raise Http404("No such article.")
        article._cached_parent_obj = self  # as Page.route does: saves get_parent() a query
        if article.date_path() != "/".join(components[:4]) + "/":
            if not article.live:
                raise Http404("No such article.")
            # A comment page keeps its number at the right address.
            extra = {"suffix": f"{components[4]}/"} if len(components) == 5 else {}
            return RouteResult(self, args=(self.redirect_to_article, [article], extra))
        # The article itself decides whether it may be served (live), and Wagtail's serve view
        # then applies its privacy restrictions, as for any page.
        return article.route(request, components[4:])

    def redirect_to_article(
        self, request: HttpRequest, article: ArticlePage, suffix: str = ""
    ) -> HttpResponse:
        return HttpResponsePermanentRedirect(article.get_url(request) + suffix)

    # Listings --------------------------------------------------------------------------------

    def articles(self) -> ArticlePageQuerySet:
        """Published articles of this site, newest first, ready for a listing."""
        return ArticlePage.objects.published().child_of(self).for_listing()

    def render_listing(
        self,
        request: HttpRequest,
        articles: Any,
        *,
        heading: str = "",
        description: str = "",
        **extra: Any,
    ) -> HttpResponse:
        page_obj = paginate(articles, request)
        if not page_obj.object_list:
            # An empty archive (any date is a valid address) is not kept in the page cache:
            # it would let anyone fill the disk with empty pages.
            request.page_cache_tags = None
        return self.render(
            request,
            template="publishing/listing.html",
            context_overrides={
                "articles": page_obj.object_list,
                "page_obj": page_obj,
                "listing_heading": heading,
                "listing_description": description,
                **extra,
            },
        )

    @re_path(r"^$", name="index")
    def index_route(self, request: HttpRequest) -> HttpResponse:
        # Sticky articles lead the front page (WordPress's "stick to the front page").
        page_obj = paginate(self.articles().order_by("-is_sticky", "-date", "-pk"), request)
        return self.render(
            request, context_overrides={"articles": page_obj.object_list, "page_obj": page_obj}
        )

    @re_path(r"^(?P<year>\d{4})/$", name="year_archive")
    @re_path(r"^(?P<year>\d{4})/(?P<month>\d{2})/$", name="month_archive")
    @re_path(r"^(?P<year>\d{4})/(?P<month>\d{2})/(?P<day>\d{2})/$", name="day_archive")
    def date_archive(
        self, request: HttpRequest, year: str, month: str | None = None, day: str | None = None
    ) -> HttpResponse:
        y, m, d = int(year), int(month) if month else None, int(day) if day else None
        try:
            articles = self.articles().in_period(y, m, d)
        except ValueError as exc:
            raise Http404("No such date.") from exc
        if d:
            heading = f"{d} {MONTHS[m]} {y}"
        elif m:
            heading = f"{MONTHS[m]} {y}"
        else:
            heading = str(y)
        return self.render_listing(request, articles, heading=heading, archive_label="Archive")

    @re_path(r"^section/(?P<slug>[-\w]+)/$", name="section")
    def section_listing(self, request: HttpRequest, slug: str) -> HttpResponse:
        section = get_object_or_404(Section, slug=slug)
        return self.render_listing(
            request,
            self.articles().in_section(section),
            heading=section.name,
            description=section.description,
            archive_label="Section",
            section=section,
        )

    @re_path(r"^tag/(?P<slug>[-\w]+)/$", name="tag")
    def tag_listing(self, request: HttpRequest, slug: str) -> HttpResponse:
        tag = get_object_or_404(Tag, slug=slug)
        return self.render_listing(
            request, self.articles().tagged(tag), heading=tag.name, archive_label="Tag"
        )

    @re_path(r"^author/(?P<slug>[-\w]+)/$", name="author")
    def author_listing(self, request: HttpRequest, slug: str) -> HttpResponse:
        person = get_object_or_404(Person, slug=slug)
        return self.render_listing(
            request,
            self.articles().by_author(person),
            heading=person.name,
            description=person.bio,
            archive_label="Author",
            person=person,
        )

    @re_path(r"^(?P<slug>[-\w]+)/$", name="article_by_slug")
    def article_by_slug(self, request: HttpRequest, slug: str) -> HttpResponse:
        """/<slug>/ (the tree address Wagtail would use) redirects to the dated address."""
        article = ArticlePage.objects.child_of(self).published().filter(slug=slug).first()
        if article is None:
            raise Http404("No such article.")
        return self.redirect_to_article(request, article)


def parse_comment_page(component: str) -> int | None:
    from broadsheet.comments.selectors import parse_comment_page

    return parse_comment_page(component)


def _is_article_path(components: list[str]) -> bool:
    """/YYYY/MM/DD/<slug>/, optionally followed by one comment page (``comment-page-N``)."""
    if len(components) == 5 and parse_comment_page(components[4]) is not None:
        components = components[:4]
    return (
        len(components) == 4
        and len(components[0]) == 4
        and len(components[1]) == 2
        and len(components[2]) == 2
        and all(part.isascii() and part.isdigit() for part in components[:3])
    )


class DiscussionPageForm(WagtailAdminPageForm):
    """The editor's form of a commentable page: a new page starts with comments allowed or
    not as the site's "Allow people to submit comments on new articles" says."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None and "allow_comments" in self.fields:
            from .discussion import settings_for_site, site_id_for_page

            parent = getattr(self, "parent_page", None)
            cfg = settings_for_site(site_id_for_page(parent.pk if parent else None))
            default = self.fields["allow_comments"].initial
            if default is None:
                default = self.instance.allow_comments
            self.initial["allow_comments"] = bool(default) and cfg.comments_open_by_default


class DiscussionMixin(ViewRestrictionsOnce):
    """A page readers may comment on (articles and standard pages). The comments engine knows
    the page only by its address and id.

    Its comments may be broken into pages (Settings > Discussion): the default page is served
    at the page's own address, the others at ``<address>comment-page-N/``; the default page's
    own ``comment-page-N/`` redirects to the address (one page, one address), and a page past
    the last is a 404.
    """

    base_form_class = DiscussionPageForm

    def _route_comment_page(
        self, request: HttpRequest, path_components: list[str]
    ) -> RouteResult | None:
        if len(path_components) == 1:
            number = parse_comment_page(path_components[0])
            if number is not None:
                Page.route(self, request, [])  # the same checks as the page itself (live)
                return RouteResult(self, kwargs={"comment_page": number})
        return None

    def serve(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        number = kwargs.pop("comment_page", None)
        discussion = self.discussion(request, page=number)
        if number is not None:
            if discussion is None or discussion.out_of_range:
                raise Http404("No such page of comments.")
            if discussion.pages is None or discussion.pages.is_default:
                # Permanent only where it stays true: page 1 when page 1 is the default. With
                # the last page as the default, today's last page is a page of its own once
                # more comments come (and with no pages, once pages are turned on), and a
                # browser keeps a 301 for ever.
                permanent = (
                    discussion.pages is not None and discussion.settings.default_page == FIRST
                )
                moved = HttpResponsePermanentRedirect if permanent else HttpResponseRedirect
                return moved(self.get_url(request))
        self._served_discussion = discussion
        return super().serve(request, *args, **kwargs)

    def discussion_context(self, request: HttpRequest, context: dict[str, Any]) -> None:
        """The discussion, and a comment page's own canonical address (not the article's)."""
        discussion = getattr(self, "_served_discussion", None)
        if discussion is None:
            discussion = self.discussion(request)
        context["discussion"] = discussion
        pages = discussion.pages if discussion is not None else None
        if pages is not None and not pages.is_default and context.get("canonical_url"):
            context["canonical_url"] = (
                context["canonical_url"] + pages.url(pages.number)[len(pages.base_url) :]
            )

    def accepts_comments(self) -> bool:
        """Rule: readers may comment only on a live, public page that allows comments.
        A draft, unpublished or private (view-restricted) page takes no comments."""
        if not (self.allow_comments and self.live and self.pk):
            return False
        return not self.get_view_restrictions().exists()

    def discussion(self, request: HttpRequest, *, page: int | None = None):
        from broadsheet.comments.selectors import discussion_for

        if self.pk is None:
            # Preview of a page not saved yet: no thread to show, and none to create.
            return None
        return discussion_for(
            thread_url=self.get_url(request) or self.url_path,
            page_id=self.pk,
            title=self.title,
            # Same rule as signals.sync_discussion, so previewing a draft never opens its thread.
            is_open=self.accepts_comments(),
            reply_to=request.GET.get("replytocom"),
            request=request,
            create=not getattr(request, "is_preview", False),
            page=page,
        )


class ArticlePage(DiscussionMixin, Page):
    """A story: headline, standfirst, body, sign-off, bylines and translation credits."""

    standfirst = models.TextField(
        blank=True, help_text="Summary under the headline, also used by feeds and search."
    )
    body = RichTextField(blank=True)  # WordPress allows an empty post (a title, an image)
    signature = models.TextField(
        blank=True, help_text="Sign-off under the article, e.g. “With fraternal greetings,”."
    )
    date = models.DateTimeField(
        "publication date",
        default=timezone.now,
        db_index=True,
        help_text="Shown on the article; part of its address (/YYYY/MM/DD/slug/).",
    )
    language = models.CharField(
        max_length=16,
        default="en",
        validators=[language_code_validator],
        help_text="Language of this text, e.g. “en”.",
    )
    original_language = models.CharField(
        max_length=16,
        blank=True,
        validators=[language_code_validator],
        help_text="For a translation: the language of the original, e.g. “ru”.",
    )
    translator = models.CharField(max_length=200, blank=True)
    original_article = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="translations",
        help_text="For a translation: the original, if it is published here.",
    )
    original_url = models.URLField(
        "original URL",
        max_length=500,
        blank=True,
        help_text="For a translation: where the original was published elsewhere.",
    )
    sections = ParentalManyToManyField(Section, blank=True, related_name="articles")
    tags = ClusterTaggableManager(through=ArticleTag, blank=True)
    allow_comments = models.BooleanField(
        default=True, help_text="Readers may comment. Unpublishing closes the discussion too."
    )
    featured_image = models.ForeignKey(
        "wagtailimages.Image",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Shown above the article and in link previews.",
    )
    is_sticky = models.BooleanField(
        "stick to the front page",
        default=False,
        help_text="Listed first on the front page, whatever its date.",
    )

    objects = ArticlePageManager()

    parent_page_types = ["publishing.HomePage"]
    subpage_types: list[str] = []
    template = "publishing/article_page.html"

    search_fields = Page.search_fields + [
        index.SearchField("standfirst"),
        index.SearchField("body"),
        index.SearchField("translator"),
        index.FilterField("date"),
        index.FilterField("expire_at"),
        index.FilterField("language"),
        index.RelatedFields("tags", [index.SearchField("name")]),
    ]

    content_panels = [
        TitleFieldPanel("title"),
        FieldPanel("standfirst"),
        InlinePanel("article_authors", heading="Authors", label="Author"),
        FieldPanel("date"),
        FieldPanel("featured_image"),
        FieldPanel("body"),
        FieldPanel("signature"),
    ]
    translation_panels = [
        FieldPanel("language"),
        MultiFieldPanel(
            [
                FieldPanel("translator"),
                FieldPanel("original_language"),
                PageChooserPanel("original_article", "publishing.ArticlePage"),
                FieldPanel("original_url"),
            ],
            heading="If this is a translation",
        ),
    ]
    classification_panels = [
        FieldPanel("sections", widget=forms.CheckboxSelectMultiple),
        FieldPanel("tags"),
    ]
    settings_panels = Page.settings_panels + [
        FieldPanel("allow_comments"),
        FieldPanel("is_sticky"),
    ]

    edit_handler = TabbedInterface(
        [
            ObjectList(content_panels, heading="Content"),
            ObjectList(classification_panels, heading="Sections & tags"),
            ObjectList(translation_panels, heading="Language & translation"),
            ObjectList(Page.promote_panels, heading="Promote"),
            ObjectList(settings_panels, heading="Settings"),
        ]
    )

    class Meta:
        verbose_name = "article"

    # Address ---------------------------------------------------------------------------------

    @property
    def is_expired(self) -> bool:
        return self.expire_at is not None and self.expire_at <= timezone.now()

    def route(self, request: HttpRequest, path_components: list[str]) -> RouteResult:
        """Not served once past its expiry time (the same rule as ``published()``), even before
        Wagtail's scheduler has unpublished it. ``comment-page-N/`` serves a page of its
        comments."""
        if self.is_expired and len(path_components) <= 1:
            raise Http404("This article has expired.")
        found = self._route_comment_page(request, path_components)
        if found is not None:
            return found
        return super().route(request, path_components)

    def date_path(self) -> str:
        """The dated part of the address: ``2017/11/20/<slug>/``."""
        local = timezone.localtime(self.date) if timezone.is_aware(self.date) else self.date
        return f"{local:%Y/%m/%d}/{self.slug}/"

    def get_url_parts(self, request: HttpRequest | None = None):
        """Wagtail's tree address with the date put in front of the slug, so ``page.url``,
        ``pageurl``, feeds and the sitemap all give /2017/11/20/<slug>/."""
        parts = super().get_url_parts(request)
        if not parts or parts[2] is None or not self.date:
            return parts
        site_id, root_url, page_path = parts
        head, _, last = page_path.rstrip("/").rpartition("/")
        local = timezone.localtime(self.date) if timezone.is_aware(self.date) else self.date
        return site_id, root_url, f"{head}/{local:%Y/%m/%d}/{last}/"

    # What the templates show -----------------------------------------------------------------

    @property
    def authors(self) -> list[Person]:
        return [credit.person for credit in self.article_authors.all()]

    @property
    def section_list(self) -> list[Section]:
        return list(self.sections.all())

    @property
    def tag_list(self) -> list[Tag]:
        return sorted((item.tag for item in self.tagged_items.all()), key=lambda t: t.name.lower())

    @property
    def language_name(self) -> str:
        return language_name(self.language)

    @property
    def original_language_name(self) -> str:
        return language_name(self.original_language)

    @property
    def og_locale(self) -> str:
        """OpenGraph's spelling of the language: “en”, “pt_BR”."""
        return to_locale(self.language)

    @property
    def safe_original_url(self) -> str:
        """The original's address, if it is a plain http(s) URL (the core link policy)."""
        return html_policy.safe_url(self.original_url)

    @cached_property
    def published_translations(self) -> list[ArticlePage]:
        """Translations of this article that readers may see."""
        if not self.pk:
            return []
        # Most articles have none: one query says so; the privacy rules (a query of every
        # view restriction) are asked only when there are some.
        live = ArticlePage.objects.live().filter(original_article=self)
        if not live.exists():
            return []
        return list(
            ArticlePage.objects.published().filter(original_article=self).order_by("language")
        )

    @cached_property
    def published_original(self) -> ArticlePage | None:
        """The original of this translation, if it is here and readers may see it."""
        if not self.original_article_id:
            return None
        return ArticlePage.objects.published().filter(pk=self.original_article_id).first()

    def prefetch_for_display(self) -> None:
        """Bylines, sections and tags in one query each, however many there are."""
        prefetch_related_objects(
            [self],
            Prefetch("article_authors", queryset=ArticleAuthor.objects.select_related("person")),
            "sections",
            Prefetch("tagged_items", queryset=ArticleTag.objects.select_related("tag")),
        )

    def json_ld(
        self, request: HttpRequest | None = None, *, home: HomePage | None = None
    ) -> SafeString:
        """The NewsArticle JSON-LD, escaped so that it can sit inside a <script> element."""
        return structured_data.script_json(
            structured_data.news_article(self, request=request, home=home)
        )

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        if self.pk and not getattr(request, "is_preview", False):
            # A preview holds the editor's unsaved bylines and tags in memory: keep them.
            self.prefetch_for_display()
        context = super().get_context(request, *args, **kwargs)
        # Wagtail's routing leaves the parent it came through on the page (as Page.route does).
        parent = getattr(self, "_cached_parent_obj", None)
        if isinstance(parent, HomePage):
            home = parent
        else:
            home = HomePage.objects.ancestor_of(self).first() if self.path else None
        context.update(chrome_context(request, home=home))
        # Everything the template shows is loaded here, not lazily while it renders.
        context["original"] = self.published_original
        context["translations"] = self.published_translations
        context["canonical_url"] = self.get_full_url(request)
        context["article_jsonld"] = self.json_ld(request, home=home)
        self.discussion_context(request, context)
        return context


class StandardPage(DiscussionMixin, Page):
    """A page outside the news flow (“About”, “Contact”, a campaign page), as WordPress pages
    are: served at its place in the tree (/about/, /about/team/), and commentable if allowed."""

    standfirst = models.TextField(blank=True, help_text="Summary under the title.")
    body = RichTextField(blank=True)
    allow_comments = models.BooleanField(
        default=False, help_text="Readers may comment. Unpublishing closes the discussion too."
    )

    parent_page_types = ["publishing.HomePage", "publishing.StandardPage"]
    subpage_types = ["publishing.StandardPage"]
    template = "publishing/standard_page.html"

    search_fields = Page.search_fields + [
        index.SearchField("standfirst"),
        index.SearchField("body"),
    ]
    content_panels = Page.content_panels + [FieldPanel("standfirst"), FieldPanel("body")]
    settings_panels = Page.settings_panels + [FieldPanel("allow_comments")]

    class Meta:
        verbose_name = "page"

    def get_context(self, request: HttpRequest, *args: Any, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context(request, *args, **kwargs)
        home = HomePage.objects.ancestor_of(self).first() if self.path else None
        context.update(chrome_context(request, home=home))
        self.discussion_context(request, context)
        return context

    def route(self, request: HttpRequest, path_components: list[str]) -> RouteResult:
        # A child page's slug wins over a comment page of the same name.
        found = self._route_comment_page(request, path_components)
        if found is not None and not self.get_children().filter(slug=path_components[0]).exists():
            return found
        return super().route(request, path_components)


# The site settings model lives with the rest of the discussion code; importing it here
# registers it with this app.
from .discussion import DiscussionSettings  # noqa: E402, F401
