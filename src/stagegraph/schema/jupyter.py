"""JupyterHub and JupyterLab: theme, hub overrides, lab settings, jhub-apps, telemetry."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from stagegraph.schema.base import Section
from stagegraph.schema.migration import MajorMigration
from stagegraph.schema.secret import SecretValue

NEBARI_DOCS = "https://www.nebari.dev/docs"


class JupyterHubTheme(Section):
    """Look of the JupyterHub pages."""

    hub_title: str = Field("Nebari", description="Title on the hub pages.")
    hub_subtitle: str = Field(
        "Your open source data science platform", description="Subtitle on the hub pages."
    )
    welcome: str = Field(
        f'Welcome! Learn about Nebari\'s features and configurations in <a href="{NEBARI_DOCS}">the '
        "documentation</a>. If you have any questions or feedback, reach the team on "
        f'<a href="{NEBARI_DOCS}/community#getting-support">Nebari\'s support forums</a>.',
        description="Welcome text (HTML) on the login page.",
    )
    logo: str = Field(
        "https://raw.githubusercontent.com/nebari-dev/nebari-design/main/logo-mark/horizontal/"
        "Nebari-Logo-Horizontal-Lockup-White-text.svg",
        description="URL of the logo in the navigation bar.",
    )
    favicon: str = Field(
        "https://raw.githubusercontent.com/nebari-dev/nebari-design/main/symbol/favicon.ico",
        description="URL of the browser tab icon.",
    )
    primary_color: str = Field("#4f4173", description="Primary color (light mode).")
    primary_color_dark: str = Field("#4f4173", description="Primary color (dark mode).")
    secondary_color: str = Field("#957da6", description="Secondary color (light mode).")
    secondary_color_dark: str = Field("#957da6", description="Secondary color (dark mode).")
    accent_color: str = Field("#32C574", description="Accent color (light mode).")
    accent_color_dark: str = Field("#32C574", description="Accent color (dark mode).")
    text_color: str = Field("#111111", description="Body text color.")
    h1_color: str = Field("#652e8e", description="Color of level-1 headings.")
    h2_color: str = Field("#652e8e", description="Color of level-2 headings.")
    version: str | None = Field(None, description="Version shown in the footer; null: v<nebari_version>.")
    navbar_color: str = Field("#1c1d26", description="Navigation bar background color.")
    navbar_text_color: str = Field("#f1f1f6", description="Navigation bar text color.")
    navbar_hover_color: str = Field("#db96f3", description="Navigation bar hover color.")
    # Nebari stores this as the string "True"; a YAML boolean or that string both parse.
    display_version: bool = Field(True, description="Whether to show the version in the footer.")


class Theme(Section):
    """Themes of the platform's web pages."""

    jupyterhub: JupyterHubTheme = Field(
        default_factory=dict, validate_default=True, description="JupyterHub theme."
    )


class JupyterHub(Section):
    """The JupyterHub server."""

    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Helm values merged into the JupyterHub chart."
    )
    next_major: MajorMigration = Field(
        default_factory=dict,
        validate_default=True,
        description="A phased move to the next major JupyterHub chart (lockfile pin "
        "helm_charts.jupyterhub_next): beside on next_route, then switched, then retired.",
    )


class IdleCuller(Section):
    """When idle terminals, kernels and servers are shut down (minutes)."""

    terminal_cull_inactive_timeout: int = Field(
        15, ge=0, description="Minutes before an inactive terminal is closed."
    )
    terminal_cull_interval: int = Field(5, ge=1, description="Minutes between checks for inactive terminals.")
    kernel_cull_idle_timeout: int = Field(15, ge=0, description="Minutes before an idle kernel is shut down.")
    kernel_cull_interval: int = Field(5, ge=1, description="Minutes between checks for idle kernels.")
    kernel_cull_connected: bool = Field(
        True, description="Whether to cull idle kernels that still have a browser connected."
    )
    kernel_cull_busy: bool = Field(False, description="Whether to cull busy kernels.")
    server_shutdown_no_activity_timeout: int = Field(
        15, ge=0, description="Minutes without kernels or terminals before the server stops."
    )


class GalleryExhibit(Section):
    """A git repository shown in the JupyterLab gallery."""

    git: str = Field(min_length=1, description="Git URL to clone.")
    title: str = Field(description="Title of the exhibit.")
    homepage: str | None = Field(None, description="Link shown with the exhibit.")
    description: str | None = Field(None, description="Text shown with the exhibit.")
    icon: str | None = Field(None, description="URL of the exhibit's icon.")
    account: str | None = Field(None, description="Account to clone a private repository with.")
    token: SecretValue | None = Field(None, description="Token of that account (a secret).")
    branch: str | None = Field(None, description="Branch to clone.")
    depth: int | None = Field(None, ge=1, description="Clone depth.")


class GallerySettings(Section):
    """The jupyterlab-gallery extension."""

    title: str = Field("Examples", description="Title of the gallery.")
    destination: str = Field("examples", description="Folder in the home directory exhibits are cloned into.")
    exhibits: list[GalleryExhibit] = Field(
        default_factory=list, description="Repositories shown in the gallery."
    )
    hide_gallery_without_exhibits: bool = Field(
        True, description="Whether to hide the gallery when it is empty."
    )


class JupyterLab(Section):
    """JupyterLab user servers."""

    default_settings: dict[str, Any] = Field(
        default_factory=dict, description="JupyterLab settings overrides by plugin id (overrides.json)."
    )
    gallery_settings: GallerySettings = Field(
        default_factory=dict, validate_default=True, description="The example gallery."
    )
    idle_culler: IdleCuller = Field(
        default_factory=dict, validate_default=True, description="Idle shutdown timeouts."
    )
    initial_repositories: list[dict[str, str]] = Field(
        default_factory=list, description="Repositories cloned into new home directories ({folder: git URL})."
    )
    preferred_dir: str | None = Field(None, description="Folder the file browser opens at.")


class JHubApps(Section):
    """jhub-apps: deploy dashboards and apps from JupyterHub."""

    enabled: bool = Field(False, description="Whether to install jhub-apps.")
    overrides: dict[str, Any] = Field(default_factory=dict, description="jhub-apps settings overrides.")


class JupyterLabPioneer(Section):
    """jupyterlab-pioneer telemetry."""

    enabled: bool = Field(False, description="Whether to log JupyterLab events.")
    log_format: str | None = Field(None, description="Python logging format of the events.")


class Telemetry(Section):
    """Usage telemetry collected inside the platform (never sent anywhere by default)."""

    jupyterlab_pioneer: JupyterLabPioneer = Field(
        default_factory=dict, validate_default=True, description="JupyterLab events."
    )
