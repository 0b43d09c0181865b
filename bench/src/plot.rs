//! `--plot FILE.svg`: time against size, one line per backend and baseline,
//! log-scale time axis (plotters' SVG backend: text stays text, no fonts
//! needed to write it).

use std::path::Path;

use plotters::prelude::*;

/// One measured point: the median and its min–max range.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Size (log2 size, or N).
    pub x: f64,
    /// Median.
    pub y: f64,
    /// Minimum.
    pub lo: f64,
    /// Maximum.
    pub hi: f64,
}

/// One line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub label: String,
    /// Its points, any order.
    pub points: Vec<Point>,
}

/// A chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Plot {
    /// Caption.
    pub title: String,
    /// X axis description.
    pub x_label: String,
    /// Y axis description.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
}

impl Plot {
    /// Writes the chart as SVG to `path`.
    pub fn write_svg(&self, path: &Path) -> Result<(), String> {
        let points = || self.series.iter().flat_map(|s| s.points.iter());
        if points().next().is_none() {
            return Err("nothing to plot".into());
        }
        if points().any(|p| !(p.lo > 0.0 && p.y > 0.0 && p.hi > 0.0 && p.hi.is_finite())) {
            return Err("times must be positive and finite to plot on a log scale".into());
        }
        let (x0, x1) = points().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.x), b.max(p.x)));
        let (y0, y1) = points().fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.lo), b.max(p.hi)));
        // margins: half a unit on x, a factor 1.5 on the log axis
        let e = |e: DrawingAreaErrorKind<_>| format!("{}: {e}", path.display());
        let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
        root.fill(&WHITE).map_err(e)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 22))
            .margin(18)
            .x_label_area_size(48)
            .y_label_area_size(80)
            .build_cartesian_2d((x0 - 0.5)..(x1 + 0.5), ((y0 / 1.5)..(y1 * 1.5)).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .light_line_style(WHITE)
            .x_label_formatter(&|x| if (x - x.round()).abs() < 1e-9 { format!("{x:.0}") } else { String::new() })
            .y_label_formatter(&|y| significant(*y, 3))
            .draw()
            .map_err(e)?;
        for (i, s) in self.series.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let mut pts = s.points.clone();
            pts.sort_by(|a, b| a.x.total_cmp(&b.x));
            chart
                .draw_series(LineSeries::new(pts.iter().map(|p| (p.x, p.y)), color.stroke_width(2)))
                .map_err(e)?
                .label(&s.label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
            // the median's marker and its min-max bar
            chart
                .draw_series(pts.iter().map(|p| ErrorBar::new_vertical(p.x, p.lo, p.y, p.hi, color.filled(), 8)))
                .map_err(e)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        root.present().map_err(e)
    }
}

/// `v` with `digits` significant digits, in plain notation.
pub fn significant(v: f64, digits: i32) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let decimals = (digits - 1 - v.abs().log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plot(points: Vec<Point>) -> Plot {
        Plot {
            title: "msm".into(),
            x_label: "k".into(),
            y_label: "s".into(),
            series: vec![Series { label: "ours (cpu)".into(), points }],
        }
    }

    #[test]
    fn writes_an_svg_with_every_series_and_point() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        let mut p = plot(vec![
            Point { x: 12.0, y: 0.01, lo: 0.009, hi: 0.012 },
            Point { x: 14.0, y: 0.04, lo: 0.03, hi: 0.05 },
        ]);
        p.series.push(Series {
            label: "msm: halo2curves".into(),
            points: vec![Point { x: 12.0, y: 0.02, lo: 0.02, hi: 0.02 }],
        });
        p.write_svg(&path).unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
        assert!(svg.contains("ours (cpu)") && svg.contains("msm: halo2curves"), "legend missing");
        // one marker per point
        assert_eq!(svg.matches("<circle").count(), 3);
    }

    #[test]
    fn significant_digits() {
        assert_eq!(significant(0.0012345, 3), "0.00123");
        assert_eq!(significant(35.654, 4), "35.65");
        assert_eq!(significant(1234.4, 3), "1234");
        assert_eq!(significant(0.0, 3), "0");
    }

    #[test]
    fn refuses_what_a_log_axis_cannot_show() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.svg");
        assert!(plot(vec![]).write_svg(&path).is_err());
        assert!(plot(vec![Point { x: 1.0, y: 0.0, lo: 0.0, hi: 1.0 }]).write_svg(&path).is_err());
        assert!(!path.exists());
    }
}
