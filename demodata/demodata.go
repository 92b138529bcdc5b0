package demodata

import (
	"embed"
	"fmt"
	"io/fs"
	"slices"

	"github.com/covedata/cove"
)

// Dataset names.
const (
	AirQuality = "beijing-air-quality"
	Adult      = "adult"
)

//go:embed beijing-air-quality.parquet adult.parquet
var files embed.FS

// Dataset describes one embedded table.
type Dataset struct {
	Name     string // stable identifier, e.g. "adult"
	Title    string // human-readable title
	Domain   string // subject area of the data
	Source   string // where the original was published
	Citation string // the reference to cite wherever the data is shown
	License  string // licence of the original, which the Parquet copy keeps
	File     string // Parquet file name in FS; its extension selects the connector format
	SHA256   string // hex sha256 of the embedded Parquet bytes
	Rows     int64  // number of rows
}

// datasets is kept sorted by name.
var datasets = []Dataset{
	{
		Name:     Adult,
		Title:    "Adult (Census Income), 1994 US Census extract",
		Domain:   "social science: census person records, income above or below 50K USD",
		Source:   "UCI Machine Learning Repository, https://doi.org/10.24432/C5XW20",
		Citation: "Becker B., Kohavi R. (1996), Adult, UCI Machine Learning Repository, DOI 10.24432/C5XW20",
		License:  "CC BY 4.0",
		File:     Adult + ".parquet",
		SHA256:   "68d7c62d1de4bf021624d1ce1059d3b312215fbf98e730c3f23d1e696e709382",
		Rows:     32561,
	},
	{
		Name:   AirQuality,
		Title:  "Beijing Multi-Site Air-Quality Data (12 stations, hourly, 2013-03-01 to 2017-02-28)",
		Domain: "environment: air pollution and weather",
		Source: "UCI Machine Learning Repository, \"Beijing Multi-Site Air-Quality Data\" (Song Chen)",
		Citation: "Zhang S., Guo B., Dong A., He J., Xu Z., Chen S.X. (2017), " +
			"\"Cautionary tales on air-quality improvement in Beijing\", Proc. R. Soc. A 473: 20170457",
		License: "CC BY 4.0",
		File:    AirQuality + ".parquet",
		SHA256:  "02db3dbe5f94dda6efd41c46fce63fcd68e8abba88aa5a7ba3474680a651174b",
		Rows:    420768,
	},
}

// Datasets returns the embedded datasets, sorted by name.
func Datasets() []Dataset { return slices.Clone(datasets) }

// Lookup returns the dataset called name, or an error wrapping
// cove.ErrNotFound.
func Lookup(name string) (Dataset, error) {
	for _, d := range datasets {
		if d.Name == name {
			return d, nil
		}
	}
	return Dataset{}, fmt.Errorf("%w: demo dataset %q", cove.ErrNotFound, name)
}

// Open returns a copy of the Parquet bytes of the dataset called name, or an
// error wrapping cove.ErrNotFound.
func Open(name string) ([]byte, error) {
	d, err := Lookup(name)
	if err != nil {
		return nil, err
	}
	return files.ReadFile(d.File)
}

// FS returns the embedded Parquet files, named as Dataset.File.
func FS() fs.FS { return files }

// AirQualityStations returns the 12 monitoring stations, in the order of
// their source files (alphabetical).
func AirQualityStations() []string {
	return []string{
		"Aotizhongxin", "Changping", "Dingling", "Dongsi", "Guanyuan", "Gucheng",
		"Huairou", "Nongzhanguan", "Shunyi", "Tiantan", "Wanliu", "Wanshouxigong",
	}
}

// AirQualityYears returns the calendar years the study period touches,
// 2013 to 2017 (2013 from March, 2017 to February).
func AirQualityYears() []int64 {
	return []int64{2013, 2014, 2015, 2016, 2017}
}

// AdultEducation returns the 16 education levels in the order adult.names
// lists them.
func AdultEducation() []string {
	return []string{
		"Bachelors", "Some-college", "11th", "HS-grad", "Prof-school", "Assoc-acdm",
		"Assoc-voc", "9th", "7th-8th", "12th", "Masters", "1st-4th", "10th",
		"Doctorate", "5th-6th", "Preschool",
	}
}

// AdultOccupations returns the 14 occupations in the order adult.names lists
// them. Missing occupations ("?" in the source) are null in the data and are
// not part of the domain.
func AdultOccupations() []string {
	return []string{
		"Tech-support", "Craft-repair", "Other-service", "Sales", "Exec-managerial",
		"Prof-specialty", "Handlers-cleaners", "Machine-op-inspct", "Adm-clerical",
		"Farming-fishing", "Transport-moving", "Priv-house-serv", "Protective-serv",
		"Armed-Forces",
	}
}
