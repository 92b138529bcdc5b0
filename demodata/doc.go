// Package demodata ships two public tables as embedded Parquet files, so that
// examples, tests and benchmarks run on real data without a network.
//
// # Datasets
//
//   - "beijing-air-quality" (AirQuality): hourly readings from 12 monitoring
//     stations in Beijing, 2013-03-01 to 2017-02-28; 420,768 rows.
//   - "adult" (Adult): the UCI Adult (Census Income) person records, the
//     standard benchmark for differential privacy; 32,561 rows.
//
// Datasets lists them with title, subject domain, source, citation, licence,
// row count and the sha256 of the embedded Parquet bytes; Open returns those
// bytes and FS serves them as files. Read them with package connectors:
//
//	b, _ := demodata.Open(demodata.AirQuality)
//	r, err := connectors.OpenBytes(demodata.AirQuality+".parquet", b, connectors.Options{})
//
// # Public value domains
//
// A differentially private histogram must not take its bins from the data,
// or the presence of a rare value leaks. AirQualityStations, AirQualityYears,
// AdultEducation and AdultOccupations are the value sets published with the
// data sets themselves (file names, study period, adult.names), so a job may
// use them as bins without spending privacy budget on finding them.
//
// # Provenance
//
// The Parquet files were produced from the unmodified published CSV files by
// internal/tools/mkdemodata, which checks each source's sha256 first and
// writes byte-identical output on every run. README.md in this directory
// gives the citations, licences (CC BY 4.0), source hashes and the schemas.
//
// # Concurrency
//
// Everything here is read-only and safe for concurrent use. Open returns a
// fresh copy of the bytes on each call; the slices returned by the domain
// functions are fresh too, so callers may modify them.
package demodata
