//! The Arrow side of the SQL source, shared by the three databases: the column kinds floe
//! loads ([`Kind`]), one builder per column ([`Col`]) and a batch of them ([`BatchBuilder`]).
//!
//! Each database decodes its own wire format into [`Cell`]s (plain values borrowed from the
//! wire buffer, no allocation) and pushes them straight into the builders: no row is ever
//! materialised as `serde_json::Value` or an owned struct.

use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, NullBufferBuilder, StringBuilder,
    Time64MicrosecondBuilder, TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, ListArray, RecordBatch};
use arrow_buffer::{OffsetBuffer, ScalarBuffer};
use arrow_schema::{ArrowError, DataType, Field, Schema, SchemaRef, TimeUnit};

/// What a source column loads as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bool,
    I16,
    I32,
    I64,
    F32,
    F64,
    /// Precision (1..=38) and scale.
    Decimal(u8, i8),
    Text,
    Binary,
    /// Days since 1970-01-01.
    Date,
    /// Microseconds since midnight.
    Time,
    /// Microseconds since 1970-01-01 00:00, no time zone.
    Timestamp,
    /// Microseconds since 1970-01-01 00:00 UTC.
    TimestampTz,
    List(Box<Kind>),
}

impl Kind {
    pub fn data_type(&self) -> DataType {
        match self {
            Kind::Bool => DataType::Boolean,
            Kind::I16 => DataType::Int16,
            Kind::I32 => DataType::Int32,
            Kind::I64 => DataType::Int64,
            Kind::F32 => DataType::Float32,
            Kind::F64 => DataType::Float64,
            Kind::Decimal(p, s) => DataType::Decimal128(*p, *s),
            Kind::Text => DataType::Utf8,
            Kind::Binary => DataType::Binary,
            Kind::Date => DataType::Date32,
            Kind::Time => DataType::Time64(TimeUnit::Microsecond),
            Kind::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::TimestampTz => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::List(item) => DataType::List(Arc::new(item_field(item))),
        }
    }
}

fn item_field(item: &Kind) -> Field {
    Field::new("item", item.data_type(), true)
}

/// The largest precision a Decimal128 holds.
pub const MAX_DECIMAL_PRECISION: u8 = 38;

/// One value as decoded from the wire, in the representation of its [`Kind`].
#[derive(Debug, Clone, Copy)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    I16(i16),
    I32(i32),
    I64(i64),
    F32(f32),
    F64(f64),
    /// Unscaled value at the column's scale.
    Decimal(i128),
    Str(&'a str),
    Bytes(&'a [u8]),
    /// Days since the Unix epoch.
    Date(i32),
    /// Microseconds since midnight.
    Time(i64),
    /// Microseconds since the Unix epoch.
    Micros(i64),
}

impl Cell<'_> {
    fn name(&self) -> &'static str {
        match self {
            Cell::Null => "null",
            Cell::Bool(_) => "boolean",
            Cell::I16(_) | Cell::I32(_) | Cell::I64(_) => "integer",
            Cell::F32(_) | Cell::F64(_) => "float",
            Cell::Decimal(_) => "decimal",
            Cell::Str(_) => "text",
            Cell::Bytes(_) => "bytes",
            Cell::Date(_) => "date",
            Cell::Time(_) => "time",
            Cell::Micros(_) => "timestamp",
        }
    }
}

/// A list column: offsets and validity kept here, the items in a child builder.
pub struct ListCol {
    offsets: Vec<i32>,
    validity: NullBufferBuilder,
    pub items: Col,
    item: Kind,
}

/// The builder of one column.
pub enum Col {
    Bool(BooleanBuilder),
    I16(Int16Builder),
    I32(Int32Builder),
    I64(Int64Builder),
    F32(Float32Builder),
    F64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Binary(BinaryBuilder),
    Date(Date32Builder),
    Time(Time64MicrosecondBuilder),
    Timestamp(TimestampMicrosecondBuilder, bool),
    List(Box<ListCol>),
}

/// A value of one kind pushed into a column of another: a bug in a decoder, reported rather
/// than panicking.
#[derive(Debug)]
pub struct Mismatch(pub String);

impl Col {
    pub fn new(kind: &Kind, capacity: usize) -> Col {
        match kind {
            Kind::Bool => Col::Bool(BooleanBuilder::with_capacity(capacity)),
            Kind::I16 => Col::I16(Int16Builder::with_capacity(capacity)),
            Kind::I32 => Col::I32(Int32Builder::with_capacity(capacity)),
            Kind::I64 => Col::I64(Int64Builder::with_capacity(capacity)),
            Kind::F32 => Col::F32(Float32Builder::with_capacity(capacity)),
            Kind::F64 => Col::F64(Float64Builder::with_capacity(capacity)),
            Kind::Decimal(p, s) => Col::Decimal(Decimal128Builder::with_capacity(capacity), *p, *s),
            Kind::Text => Col::Text(StringBuilder::with_capacity(capacity, capacity.saturating_mul(16))),
            Kind::Binary => Col::Binary(BinaryBuilder::with_capacity(capacity, capacity.saturating_mul(16))),
            Kind::Date => Col::Date(Date32Builder::with_capacity(capacity)),
            Kind::Time => Col::Time(Time64MicrosecondBuilder::with_capacity(capacity)),
            Kind::Timestamp => Col::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), false),
            Kind::TimestampTz => Col::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity), true),
            Kind::List(item) => {
                let mut offsets = Vec::with_capacity(capacity + 1);
                offsets.push(0);
                Col::List(Box::new(ListCol { offsets, validity: NullBufferBuilder::new(capacity), items: Col::new(item, capacity), item: (**item).clone() }))
            }
        }
    }

    /// Append one scalar value (lists go through [`Col::list`]).
    pub fn push(&mut self, cell: Cell<'_>) -> Result<(), Mismatch> {
        match (self, cell) {
            (c, Cell::Null) => c.push_null(),
            (Col::Bool(b), Cell::Bool(v)) => b.append_value(v),
            (Col::I16(b), Cell::I16(v)) => b.append_value(v),
            (Col::I32(b), Cell::I32(v)) => b.append_value(v),
            (Col::I64(b), Cell::I64(v)) => b.append_value(v),
            (Col::F32(b), Cell::F32(v)) => b.append_value(v),
            (Col::F64(b), Cell::F64(v)) => b.append_value(v),
            (Col::Decimal(b, _, _), Cell::Decimal(v)) => b.append_value(v),
            (Col::Text(b), Cell::Str(v)) => b.append_value(v),
            (Col::Binary(b), Cell::Bytes(v)) => b.append_value(v),
            (Col::Date(b), Cell::Date(v)) => b.append_value(v),
            (Col::Time(b), Cell::Time(v)) => b.append_value(v),
            (Col::Timestamp(b, _), Cell::Micros(v)) => b.append_value(v),
            (col, cell) => return Err(Mismatch(format!("a {} value for a {} column", cell.name(), col.data_type()))),
        }
        Ok(())
    }

    fn push_null(&mut self) {
        match self {
            Col::Bool(b) => b.append_null(),
            Col::I16(b) => b.append_null(),
            Col::I32(b) => b.append_null(),
            Col::I64(b) => b.append_null(),
            Col::F32(b) => b.append_null(),
            Col::F64(b) => b.append_null(),
            Col::Decimal(b, _, _) => b.append_null(),
            Col::Text(b) => b.append_null(),
            Col::Binary(b) => b.append_null(),
            Col::Date(b) => b.append_null(),
            Col::Time(b) => b.append_null(),
            Col::Timestamp(b, _) => b.append_null(),
            Col::List(l) => l.close(false),
        }
    }

    /// The list builder of a list column: push items into `items`, then `close(true)`.
    pub fn list(&mut self) -> Result<&mut ListCol, Mismatch> {
        match self {
            Col::List(l) => Ok(l),
            other => Err(Mismatch(format!("a list value for a {} column", other.data_type()))),
        }
    }

    fn data_type(&self) -> DataType {
        match self {
            Col::Bool(_) => DataType::Boolean,
            Col::I16(_) => DataType::Int16,
            Col::I32(_) => DataType::Int32,
            Col::I64(_) => DataType::Int64,
            Col::F32(_) => DataType::Float32,
            Col::F64(_) => DataType::Float64,
            Col::Decimal(_, p, s) => DataType::Decimal128(*p, *s),
            Col::Text(_) => DataType::Utf8,
            Col::Binary(_) => DataType::Binary,
            Col::Date(_) => DataType::Date32,
            Col::Time(_) => DataType::Time64(TimeUnit::Microsecond),
            Col::Timestamp(_, tz) => Kind::data_type(if *tz { &Kind::TimestampTz } else { &Kind::Timestamp }),
            Col::List(l) => Kind::List(Box::new(l.item.clone())).data_type(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Col::Bool(b) => Arc::new(b.finish()),
            Col::I16(b) => Arc::new(b.finish()),
            Col::I32(b) => Arc::new(b.finish()),
            Col::I64(b) => Arc::new(b.finish()),
            Col::F32(b) => Arc::new(b.finish()),
            Col::F64(b) => Arc::new(b.finish()),
            Col::Decimal(b, p, s) => Arc::new(b.finish().with_precision_and_scale(*p, *s)?),
            Col::Text(b) => Arc::new(b.finish()),
            Col::Binary(b) => Arc::new(b.finish()),
            Col::Date(b) => Arc::new(b.finish()),
            Col::Time(b) => Arc::new(b.finish()),
            Col::Timestamp(b, tz) => {
                let a = b.finish();
                Arc::new(if *tz { a.with_timezone("UTC") } else { a })
            }
            Col::List(l) => l.finish()?,
        })
    }
}

impl ListCol {
    /// End the current list value (`valid == false`: the value is NULL).
    pub fn close(&mut self, valid: bool) {
        let end = i32::try_from(self.items.len()).unwrap_or(i32::MAX);
        self.offsets.push(end);
        self.validity.append(valid);
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        let items = self.items.finish()?;
        let offsets = std::mem::replace(&mut self.offsets, vec![0]);
        // `close` saturates at i32::MAX, so offsets never decrease; more than 2^31 items in
        // one batch would be caught here rather than wrap around.
        if offsets.last().is_some_and(|l| *l == i32::MAX) {
            return Err(ArrowError::InvalidArgumentError("more than 2^31 list items in one batch: lower chunk_size".into()));
        }
        let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
        let nulls = self.validity.finish();
        Ok(Arc::new(ListArray::try_new(Arc::new(item_field(&self.item)), offsets, items, nulls)?))
    }
}

impl Col {
    /// Rows (or list items) appended so far.
    fn len(&self) -> usize {
        use arrow_array::builder::ArrayBuilder;
        match self {
            Col::Bool(b) => b.len(),
            Col::I16(b) => b.len(),
            Col::I32(b) => b.len(),
            Col::I64(b) => b.len(),
            Col::F32(b) => b.len(),
            Col::F64(b) => b.len(),
            Col::Decimal(b, _, _) => b.len(),
            Col::Text(b) => b.len(),
            Col::Binary(b) => b.len(),
            Col::Date(b) => b.len(),
            Col::Time(b) => b.len(),
            Col::Timestamp(b, _) => b.len(),
            Col::List(l) => l.offsets.len() - 1,
        }
    }
}

/// The builders of one batch, and the row count.
pub struct BatchBuilder {
    schema: SchemaRef,
    kinds: Vec<Kind>,
    pub cols: Vec<Col>,
    rows: usize,
    capacity: usize,
}

impl BatchBuilder {
    /// `columns`: name and kind of each column, in select order. Every field is nullable:
    /// a later `ALTER … DROP NOT NULL` at the source must not break the table's schema.
    pub fn new(columns: &[(String, Kind)], capacity: usize) -> BatchBuilder {
        let schema = Arc::new(Schema::new(columns.iter().map(|(n, k)| Field::new(n, k.data_type(), true)).collect::<Vec<_>>()));
        let kinds: Vec<Kind> = columns.iter().map(|(_, k)| k.clone()).collect();
        let capacity = capacity.max(1);
        let cols = kinds.iter().map(|k| Col::new(k, capacity)).collect();
        BatchBuilder { schema, kinds, cols, rows: 0, capacity }
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Count one complete row (every column pushed once).
    pub fn row_done(&mut self) {
        self.rows += 1;
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn is_full(&self) -> bool {
        self.rows >= self.capacity
    }

    /// The batch so far; the builders start over.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let arrays = self.cols.iter_mut().map(Col::finish).collect::<Result<Vec<_>, _>>()?;
        self.cols = self.kinds.iter().map(|k| Col::new(k, self.capacity)).collect();
        let rows = std::mem::take(&mut self.rows);
        RecordBatch::try_new_with_options(self.schema.clone(), arrays, &arrow_array::RecordBatchOptions::new().with_row_count(Some(rows)))
    }
}
