//! Result rows from either reader: sqlx's (PostgreSQL, in-memory SQLite) or the SQLite
//! reader that runs on the calling thread ([`crate::sqlite_reader`]). The record decoders
//! read both through [`Columns`].

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::{Context, StoreError};

/// Column access shared by both kinds of rows; the record decoders use only this.
pub(crate) trait Columns {
    /// An integer column, `None` for NULL.
    fn get_int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    /// A text column, `None` for NULL.
    fn get_text(&self, i: usize) -> Result<Option<String>, StoreError>;
    /// A blob column, `None` for NULL.
    fn get_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError>;
}

impl Columns for AnyRow {
    fn get_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        self.try_get::<Option<i64>, _>(i)
            .ctx("decode integer column")
    }

    fn get_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        self.try_get::<Option<String>, _>(i)
            .ctx("decode text column")
    }

    fn get_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        self.try_get::<Option<Vec<u8>>, _>(i)
            .ctx("decode blob column")
    }
}

/// The rows of one query.
pub(crate) enum Rows {
    /// From sqlx.
    Any(Vec<AnyRow>),
    /// From the SQLite reader.
    Table(Table),
}

impl Rows {
    /// How many rows there are.
    pub(crate) fn len(&self) -> usize {
        match self {
            Rows::Any(rows) => rows.len(),
            Rows::Table(table) => table.len(),
        }
    }

    /// Decodes every row with `decode`, in order.
    pub(crate) fn decode<T>(
        &self,
        mut decode: impl FnMut(&dyn Columns) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Rows::Any(rows) => rows.iter().map(|row| decode(row)).collect(),
            Rows::Table(table) => table.rows().map(|row| decode(&row)).collect(),
        }
    }

    /// Runs `visit` on every row, in order.
    pub(crate) fn for_each(
        &self,
        mut visit: impl FnMut(&dyn Columns) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        self.decode(|row| visit(row)).map(drop)
    }
}

/// One value as SQLite stored it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cell {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
}

/// Rows of `width` values, row after row.
#[derive(Debug, Default)]
pub(crate) struct Table {
    cells: Vec<Cell>,
    width: usize,
}

impl Table {
    /// An empty table of `width` columns.
    pub(crate) fn new(width: usize) -> Table {
        Table {
            cells: Vec::new(),
            width,
        }
    }

    /// Appends a value; every `width` values make a row.
    pub(crate) fn push(&mut self, cell: Cell) {
        self.cells.push(cell);
    }

    fn len(&self) -> usize {
        self.cells.len().checked_div(self.width).unwrap_or(0)
    }

    fn rows(&self) -> impl Iterator<Item = TableRow<'_>> {
        self.cells
            .chunks_exact(self.width.max(1))
            .map(|cells| TableRow { cells })
    }
}

/// One row of a [`Table`].
struct TableRow<'a> {
    cells: &'a [Cell],
}

impl TableRow<'_> {
    fn cell(&self, i: usize) -> Result<&Cell, StoreError> {
        self.cells.get(i).ok_or_else(|| StoreError::Decode {
            column: i,
            reason: "no such column".into(),
        })
    }
}

fn mismatch(i: usize, wanted: &str, got: &Cell) -> StoreError {
    StoreError::Decode {
        column: i,
        reason: format!("expected {wanted}, found {got:?}"),
    }
}

impl Columns for TableRow<'_> {
    fn get_int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Int(v) => Ok(Some(*v)),
            other => Err(mismatch(i, "an integer", other)),
        }
    }

    fn get_text(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Text(s) => Ok(Some(s.clone())),
            other => Err(mismatch(i, "text", other)),
        }
    }

    fn get_blob(&self, i: usize) -> Result<Option<Vec<u8>>, StoreError> {
        match self.cell(i)? {
            Cell::Null => Ok(None),
            Cell::Blob(b) => Ok(Some(b.clone())),
            Cell::Text(s) => Ok(Some(s.as_bytes().to_vec())),
            other => Err(mismatch(i, "a blob", other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_of_a_table() {
        let mut table = Table::new(2);
        for cell in [
            Cell::Int(1),
            Cell::Text("a".into()),
            Cell::Null,
            Cell::Real(2.5),
        ] {
            table.push(cell);
        }
        let rows = Rows::Table(table);
        assert_eq!(rows.len(), 2);
        let decoded = rows
            .decode(|row| Ok((row.get_int(0)?, row.get_text(1).ok().flatten())))
            .unwrap();
        assert_eq!(decoded, vec![(Some(1), Some("a".into())), (None, None)]);
        assert!(rows.decode(|row| row.get_int(1)).is_err());
    }
}
