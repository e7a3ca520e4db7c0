"""The CMS survey of a site: installs at and below the docroot, WordPress's plugins and themes read from their
headers, and a customer's symlinks never followed."""

from __future__ import annotations

import os

import pytest

from ansible_collections.hostguard.hosting.plugins.module_utils import cms_survey


def wordpress(root, version="6.4.3"):
    (root / "wp-includes").mkdir(parents=True)
    (root / "wp-includes" / "version.php").write_text(f"<?php\n$wp_version = '{version}';\n")
    return root


def plugin(install, slug, header, filename=None):
    directory = install / "wp-content" / "plugins" / slug
    directory.mkdir(parents=True)
    (directory / (filename or f"{slug}.php")).write_text(header)
    return directory


def theme(install, slug, header):
    directory = install / "wp-content" / "themes" / slug
    directory.mkdir(parents=True)
    (directory / "style.css").write_text(header)


def test_a_wordpress_install_is_found_with_its_plugins_and_themes(tmp_path):
    site = wordpress(tmp_path / "site1")
    plugin(site, "contact-form-7", "<?php\n/*\nPlugin Name: Contact Form 7\nVersion: 5.1\n*/\n",
           filename="wp-contact-form-7.php")
    (site / "wp-content" / "plugins" / "contact-form-7" / "includes.php").write_text("<?php // no header\n")
    plugin(site, "hello", "<?php\n/**\n * Plugin Name: Hello Dolly\n * Version: 1.7.2\n */\n")
    theme(site, "twentytwentyfour", "/*\nTheme Name: Twenty Twenty-Four\nVersion: 1.0 */\n")
    (site / "wp-content" / "themes" / "not-a-theme").mkdir()
    [install] = cms_survey.survey(str(site))
    assert (install["cms"], install["path"], install["version"]) == ("wordpress", str(site), "6.4.3")
    assert [(p["slug"], p["name"], p["version"]) for p in install["plugins"]] == [
        ("contact-form-7", "Contact Form 7", "5.1"), ("hello", "Hello Dolly", "1.7.2")]
    assert install["plugins"][0]["path"].endswith("/contact-form-7/wp-contact-form-7.php")
    assert [(t["slug"], t["name"], t["version"]) for t in install["themes"]] == [
        ("twentytwentyfour", "Twenty Twenty-Four", "1.0")]


def test_installs_below_the_docroot_are_found_to_the_depth_asked(tmp_path):
    wordpress(tmp_path / "site" / "blog", "6.8.3")
    wordpress(tmp_path / "site" / "shop" / "wp", "5.9")
    wordpress(tmp_path / "site" / "a" / "b" / "c", "4.0")
    joomla = tmp_path / "site" / "portal" / "libraries" / "src"
    joomla.mkdir(parents=True)
    (joomla / "Version.php").write_text("<?php\nconst MAJOR_VERSION = 5;\nconst MINOR_VERSION = 2;\n"
                                        "const PATCH_VERSION = 3;\n")
    found = cms_survey.survey(str(tmp_path / "site"))
    assert [(i["cms"], os.path.relpath(i["path"], tmp_path / "site"), i["version"]) for i in found] == [
        ("wordpress", "blog", "6.8.3"), ("joomla", "portal", "5.2.3"), ("wordpress", "shop/wp", "5.9")]
    assert [i["path"] for i in cms_survey.survey(str(tmp_path / "site"), depth=1)] == [
        str(tmp_path / "site" / "blog"), str(tmp_path / "site" / "portal")]


def test_an_install_in_a_directory_of_another_is_found_too(tmp_path):
    # A WordPress at the docroot with a second one in /blog: common on shared hosting, and each gets old on its own.
    site = wordpress(tmp_path / "site", "4.9.8")
    wordpress(site / "blog", "6.9")
    assert [(i["path"], i["version"]) for i in cms_survey.survey(str(site))] == [
        (str(site), "4.9.8"), (str(site / "blog"), "6.9")]


def test_a_customers_symlinks_are_never_followed(tmp_path):
    outside = wordpress(tmp_path / "outside", "9.9")
    plugin(outside, "secret", "<?php\n/* Plugin Name: Outside\nVersion: 1 */\n")
    site = tmp_path / "site"
    site.mkdir()
    (site / "linked").symlink_to(outside)                      # an install elsewhere, linked in
    install = wordpress(site / "blog")
    (install / "wp-content").mkdir()
    (install / "wp-content" / "plugins").symlink_to(outside / "wp-content" / "plugins")
    (install / "wp-content" / "themes").mkdir()
    (install / "wp-content" / "themes" / "evil").mkdir()
    (install / "wp-content" / "themes" / "evil" / "style.css").symlink_to("/etc/passwd")
    [found] = cms_survey.survey(str(site))
    assert (found["path"], found["plugins"], found["themes"]) == (str(install), [], [])


def test_a_version_file_swapped_for_a_symlink_is_not_read(tmp_path):
    site = tmp_path / "site"
    (site / "wp-includes").mkdir(parents=True)
    (tmp_path / "real.php").write_text("<?php $wp_version = '1.0';")
    (site / "wp-includes" / "version.php").symlink_to(tmp_path / "real.php")
    assert cms_survey.survey(str(site)) == []


def test_a_docroot_reached_through_a_symlink_is_refused_naming_it(tmp_path):
    wordpress(tmp_path / "real")
    (tmp_path / "site").symlink_to(tmp_path / "real")
    with pytest.raises(cms_survey.SurveyError, match="site"):
        cms_survey.survey(str(tmp_path / "site"))


@pytest.mark.parametrize("text, fields", [
    ("<?php\n/*\nPlugin Name: Akismet Anti-spam\nVersion: 5.3.1\n*/", {"Plugin Name": "Akismet Anti-spam",
                                                                       "Version": "5.3.1"}),
    ("<?php /* Plugin Name: One Line */ ?>", {"Plugin Name": "One Line"}),
    ("# Version: 2.0\n", {"Version": "2.0"}),
    ("$version = 'Version: 3.0';", {}),
])
def test_header_fields_are_read_as_wordpress_reads_them(text, fields):
    assert cms_survey.header_fields(text, ("Plugin Name", "Version")) == fields
