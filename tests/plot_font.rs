//! SVG figures embed the font their texts were measured in (DejaVu Sans, as an `@font-face`
//! in base64), so that a viewer without DejaVu draws the same widths the layout measured.

mod common;

use common::*;
use std::process::Command;

#[test]
fn base64_is_rfc4648() {
    use headhunt::plot::canvas::base64;
    assert_eq!(base64(b"Man"), "TWFu");
    assert_eq!(base64(b"Ma"), "TWE=");
    assert_eq!(base64(b"M"), "TQ==");
    assert_eq!(base64(b""), "");
    assert_eq!(base64(&[0xff, 0xfe, 0xfd, 0x00]), "//79AA==");
}

#[test]
fn an_svg_figure_embeds_its_font_and_every_text_uses_it() {
    let dir = temp_dir("plot-font");
    let out = dir.join("fig.svg");
    let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("data/paper/results/gemma_2_9b/resid_post_41.json");
    let o = Command::new(bin())
        .args([
            "plot".as_ref(),
            file.as_os_str(),
            "--out".as_ref(),
            out.as_os_str(),
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let svg = std::fs::read_to_string(&out).unwrap();
    let font = dejavu::sans::regular();
    let data = headhunt::plot::canvas::base64(font);
    let face = format!(
        "@font-face{{font-family:headhunt-dejavu-sans;src:url(data:font/ttf;base64,{data})"
    );
    assert!(svg.contains(&face), "the whole font, embedded");
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let texts: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("text"))
        .collect();
    assert!(texts.len() > 10);
    for t in texts {
        let family = t.attribute("font-family").unwrap_or("");
        assert!(family.starts_with("headhunt-dejavu-sans"), "{family:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}
