//! Arrow and Iceberg schemas: the type policy (see the module doc of `destination`), new
//! tables, schema evolution (columns a batch has and the table lacks), and conforming batches
//! to the table schema, with rows that cannot be stored rejected rather than nulled.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Float64Type;
use arrow_array::{
    Array, ArrayRef, BooleanArray, ListArray, MapArray, RecordBatch, RecordBatchOptions, StringArray, StructArray, new_null_array,
};
use arrow_cast::cast::{CastOptions, can_cast_types, cast_with_options};
use arrow_schema::{DataType, Field, FieldRef, Fields, Schema as ArrowSchema, SchemaRef as ArrowSchemaRef};
use iceberg::spec::{ListType, MapType, NestedField, NestedFieldRef, PrimitiveType, Schema, StructType, Type};
use iceberg::transaction::AddColumn;

/// The column that records which load wrote each row.
pub const LOAD_ID_COLUMN: &str = "_floe_load_id";

/// How many distinct rejection reasons a load reports.
pub(crate) const MAX_REJECTION_SAMPLES: usize = 10;

/// The Iceberg type of an Arrow type under the type policy, numbering nested fields from
/// `next_id` (ids are reassigned by the catalog or by the schema update anyway).
/// `None` when the type carries no information (Arrow `Null`, or containers of it): such a
/// column is not created until a batch brings real values.
pub(crate) fn iceberg_type(data_type: &DataType, next_id: &mut i32) -> Result<Option<Type>, String> {
    use PrimitiveType as P;
    let primitive = |p: P| Ok(Some(Type::Primitive(p)));
    match data_type {
        DataType::Null => Ok(None),
        DataType::Boolean => primitive(P::Boolean),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => primitive(P::Long),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => primitive(P::Double),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => {
            decimal_type(*p, *s).map(Some)
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => primitive(P::String),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => primitive(P::Binary),
        DataType::FixedSizeBinary(n) => primitive(P::Fixed(u64::try_from(*n).unwrap_or(0))),
        DataType::Date32 | DataType::Date64 => primitive(P::Date),
        DataType::Time32(_) | DataType::Time64(_) => primitive(P::Time),
        DataType::Timestamp(_, Some(_)) => primitive(P::Timestamptz),
        DataType::Timestamp(_, None) => primitive(P::Timestamp),
        DataType::Dictionary(_, value) => iceberg_type(value, next_id),
        DataType::List(element)
        | DataType::LargeList(element)
        | DataType::ListView(element)
        | DataType::LargeListView(element)
        | DataType::FixedSizeList(element, _) => list_type(element, next_id),
        DataType::Struct(fields) => struct_type(fields, next_id),
        DataType::Map(entries, _) => map_type(entries, next_id),
        other => Err(format!("Arrow type {other} has no Iceberg equivalent")),
    }
}

fn decimal_type(precision: u8, scale: i8) -> Result<Type, String> {
    let scale = u32::try_from(scale).map_err(|_| format!("decimal with negative scale {scale} is not supported"))?;
    if precision > 38 {
        return Err(format!("decimal precision {precision} exceeds Iceberg's maximum of 38"));
    }
    Ok(Type::Primitive(PrimitiveType::Decimal { precision: u32::from(precision), scale }))
}

fn fresh_id(next_id: &mut i32) -> i32 {
    *next_id += 1;
    *next_id
}

fn list_type(element: &FieldRef, next_id: &mut i32) -> Result<Option<Type>, String> {
    let id = fresh_id(next_id);
    Ok(iceberg_type(element.data_type(), next_id)?.map(|t| Type::List(ListType::new(Arc::new(NestedField::list_element(id, t, false))))))
}

fn struct_type(fields: &Fields, next_id: &mut i32) -> Result<Option<Type>, String> {
    let children = optional_fields(fields, next_id)?;
    Ok((!children.is_empty()).then(|| Type::Struct(StructType::new(children))))
}

fn optional_fields(fields: &Fields, next_id: &mut i32) -> Result<Vec<NestedFieldRef>, String> {
    let mut children = Vec::with_capacity(fields.len());
    for field in fields {
        let id = fresh_id(next_id);
        let ty = iceberg_type(field.data_type(), next_id).map_err(|e| format!("column `{}`: {e}", field.name()))?;
        if let Some(ty) = ty {
            children.push(Arc::new(NestedField::optional(id, field.name(), ty)));
        }
    }
    Ok(children)
}

fn map_type(entries: &FieldRef, next_id: &mut i32) -> Result<Option<Type>, String> {
    let DataType::Struct(kv) = entries.data_type() else {
        return Err("Arrow map entries must be a struct".into());
    };
    let (Some(key), Some(value)) = (kv.first(), kv.get(1)) else {
        return Err("Arrow map entries must have a key and a value".into());
    };
    let key_id = fresh_id(next_id);
    let value_id = fresh_id(next_id);
    let (Some(key_type), Some(value_type)) = (iceberg_type(key.data_type(), next_id)?, iceberg_type(value.data_type(), next_id)?) else {
        return Ok(None);
    };
    Ok(Some(Type::Map(MapType::new(
        Arc::new(NestedField::map_key_element(key_id, key_type)),
        Arc::new(NestedField::map_value_element(value_id, value_type, false)),
    ))))
}

/// The schema of a table created from a batch's schema. Every column is optional except the
/// primary key, which becomes required and the identifier (unless a key column is
/// floating-point, which Iceberg does not allow as an identifier).
pub(crate) fn new_table_schema(arrow: &ArrowSchema, primary_key: &[String]) -> Result<Schema, String> {
    let mut next_id = 0;
    let mut fields = optional_fields(arrow.fields(), &mut next_id)?;
    let mut identifier_ids = Vec::new();
    for key in primary_key {
        let field = fields.iter_mut().find(|f| &f.name == key).ok_or_else(|| format!("primary key column `{key}` is not in the data"))?;
        let mut required = field.as_ref().clone();
        required.required = true;
        identifier_ids.push(required.id);
        *field = Arc::new(required);
    }
    let keys_can_identify = fields
        .iter()
        .filter(|f| identifier_ids.contains(&f.id))
        .all(|f| matches!(f.field_type.as_ref(), Type::Primitive(p) if !matches!(p, PrimitiveType::Float | PrimitiveType::Double)));
    if !keys_can_identify {
        identifier_ids.clear();
    }
    Schema::builder().with_fields(fields).with_identifier_field_ids(identifier_ids).build().map_err(|e| e.to_string())
}

/// A column the table lacks: added as an optional column, nested under `parent` (a full
/// Iceberg field name) when set.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Addition {
    pub(crate) parent: Option<String>,
    pub(crate) name: String,
    pub(crate) field_type: Type,
}

impl Addition {
    pub(crate) fn to_add_column(&self) -> AddColumn {
        match &self.parent {
            None => AddColumn::optional(&self.name, self.field_type.clone()),
            Some(parent) => AddColumn::builder().parent(parent.clone()).name(self.name.clone()).field_type(self.field_type.clone()).build(),
        }
    }

    pub(crate) fn describe(&self) -> String {
        let name = match &self.parent {
            Some(parent) => format!("{parent}.{}", self.name),
            None => self.name.clone(),
        };
        format!("added column `{name}` ({})", type_name(&self.field_type))
    }
}

/// A readable Iceberg type, e.g. `struct<city: string, zip: long>` or `list<long>`.
fn type_name(ty: &Type) -> String {
    match ty {
        Type::Primitive(p) => p.to_string(),
        Type::Struct(s) => {
            let fields: Vec<String> = s.fields().iter().map(|f| format!("{}: {}", f.name, type_name(&f.field_type))).collect();
            format!("struct<{}>", fields.join(", "))
        }
        Type::List(l) => format!("list<{}>", type_name(&l.element_field.field_type)),
        Type::Map(m) => format!("map<{}, {}>", type_name(&m.key_field.field_type), type_name(&m.value_field.field_type)),
    }
}

/// The columns (top-level or inside structs, list-of-struct elements and map-of-struct values)
/// that `arrow` has and `schema` lacks, by name.
pub(crate) fn missing_fields(arrow: &ArrowSchema, schema: &Schema) -> Result<Vec<Addition>, String> {
    let mut additions = Vec::new();
    diff_struct(arrow.fields(), schema.as_struct(), None, schema, &mut additions)?;
    Ok(additions)
}

fn diff_struct(
    fields: &Fields,
    existing: &StructType,
    parent: Option<&str>,
    schema: &Schema,
    additions: &mut Vec<Addition>,
) -> Result<(), String> {
    for field in fields {
        match existing.field_by_name(field.name()) {
            None => {
                let ty = iceberg_type(field.data_type(), &mut 0).map_err(|e| format!("column `{}`: {e}", field.name()))?;
                if let Some(field_type) = ty {
                    additions.push(Addition { parent: parent.map(str::to_string), name: field.name().clone(), field_type });
                }
            }
            Some(current) => {
                if let (Some(children), Some(current_struct)) =
                    (arrow_struct_fields(field.data_type()), iceberg_struct(&current.field_type))
                {
                    let name = schema.name_by_field_id(current.id).unwrap_or(current.name.as_str()).to_string();
                    diff_struct(children, current_struct, Some(&name), schema, additions)?;
                }
            }
        }
    }
    Ok(())
}

/// The struct fields a new nested column could be added to: a struct's own, a list's struct
/// element's, a map's struct value's.
fn arrow_struct_fields(data_type: &DataType) -> Option<&Fields> {
    match data_type {
        DataType::Struct(fields) => Some(fields),
        DataType::List(e) | DataType::LargeList(e) | DataType::FixedSizeList(e, _) => match e.data_type() {
            DataType::Struct(fields) => Some(fields),
            _ => None,
        },
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => match kv.get(1).map(|v| v.data_type()) {
                Some(DataType::Struct(fields)) => Some(fields),
                _ => None,
            },
            _ => None,
        },
        _ => None,
    }
}

fn iceberg_struct(ty: &Type) -> Option<&StructType> {
    match ty {
        Type::Struct(s) => Some(s),
        Type::List(l) => match l.element_field.field_type.as_ref() {
            Type::Struct(s) => Some(s),
            _ => None,
        },
        Type::Map(m) => match m.value_field.field_type.as_ref() {
            Type::Struct(s) => Some(s),
            _ => None,
        },
        Type::Primitive(_) => None,
    }
}

/// True when data files written with `written` can be committed under `target`: every field
/// id of `written` names the same field (same full name, same kind of type) in `target`.
pub(crate) fn ids_compatible(written: &Schema, target: &Schema) -> bool {
    written.field_id_to_fields().iter().all(|(id, field)| {
        let Some(other) = target.field_by_id(*id) else { return false };
        let same_type = match (field.field_type.as_ref(), other.field_type.as_ref()) {
            (Type::Primitive(a), Type::Primitive(b)) => a == b,
            (Type::Struct(_), Type::Struct(_)) | (Type::List(_), Type::List(_)) | (Type::Map(_), Type::Map(_)) => true,
            _ => false,
        };
        same_type && written.name_by_field_id(*id) == target.name_by_field_id(*id)
    })
}

/// `batch` with the `_floe_load_id` column set to `load_id` (replacing one the source sent).
pub(crate) fn with_load_id(batch: &RecordBatch, load_id: &str) -> Result<RecordBatch, String> {
    let value: ArrayRef = Arc::new(StringArray::from_iter_values(std::iter::repeat_n(load_id, batch.num_rows())));
    let mut fields: Vec<FieldRef> = Vec::with_capacity(batch.num_columns() + 1);
    let mut columns = Vec::with_capacity(batch.num_columns() + 1);
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if field.name() != LOAD_ID_COLUMN {
            fields.push(field.clone());
            columns.push(column.clone());
        }
    }
    fields.push(Arc::new(Field::new(LOAD_ID_COLUMN, DataType::Utf8, true)));
    columns.push(value);
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    RecordBatch::try_new_with_options(Arc::new(ArrowSchema::new(fields)), columns, &options).map_err(|e| e.to_string())
}

/// Distinct reasons rows were rejected, capped at [`MAX_REJECTION_SAMPLES`].
#[derive(Debug, Default)]
pub(crate) struct Reasons(BTreeSet<String>);

impl Reasons {
    pub(crate) fn add(&mut self, reason: String) {
        if self.0.len() < MAX_REJECTION_SAMPLES {
            self.0.insert(reason);
        }
    }

    pub(crate) fn merge_into(self, samples: &mut Vec<String>) {
        for reason in self.0 {
            if samples.len() < MAX_REJECTION_SAMPLES && !samples.contains(&reason) {
                samples.push(reason);
            }
        }
    }
}

/// A batch conformed to the table schema, and what was rejected.
#[derive(Debug)]
pub(crate) struct Conformed {
    pub(crate) batch: RecordBatch,
    pub(crate) rejected_rows: usize,
    pub(crate) reasons: Reasons,
}

/// Conforms `batch` to `target` (the table schema as Arrow, with field ids): columns by name
/// in table order, missing ones null, types cast. A row is rejected (removed and counted)
/// when one of its values cannot be converted, or a required column is null.
pub(crate) fn conform(batch: &RecordBatch, target: &ArrowSchemaRef) -> Result<Conformed, String> {
    let rows = batch.num_rows();
    let mut reject = vec![false; rows];
    let mut reasons = Reasons::default();
    let mut columns = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = match batch.column_by_name(field.name()) {
            Some(source) => coerce(source, field, field.name(), &mut reject, &mut reasons)?,
            None => new_null_array(field.data_type(), rows),
        };
        if !field.is_nullable() && column.null_count() > 0 {
            mark_nulls(&column, &mut reject);
            reasons.add(format!("column `{}`: null in a required column", field.name()));
        }
        columns.push(column);
    }
    let rejected_rows = reject.iter().filter(|r| **r).count();
    if rejected_rows > 0 {
        let keep = BooleanArray::from(reject.iter().map(|r| !r).collect::<Vec<bool>>());
        columns = columns.iter().map(|c| arrow_select::filter::filter(c, &keep)).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    }
    let options = RecordBatchOptions::new().with_row_count(Some(rows - rejected_rows));
    let batch = RecordBatch::try_new_with_options(target.clone(), columns, &options).map_err(|e| e.to_string())?;
    Ok(Conformed { batch, rejected_rows, reasons })
}

fn mark_nulls(column: &ArrayRef, reject: &mut [bool]) {
    if let Some(nulls) = column.logical_nulls() {
        for (i, r) in reject.iter_mut().enumerate() {
            *r |= nulls.is_null(i);
        }
    }
}

/// True when the slot holds a value (logically: dictionary and null arrays included).
fn valid_mask(array: &dyn Array) -> Vec<bool> {
    match array.logical_nulls() {
        Some(nulls) => (0..array.len()).map(|i| nulls.is_valid(i)).collect(),
        None => vec![true; array.len()],
    }
}

/// `array` converted to `target`'s type; slots that cannot be converted are set in `reject`.
fn coerce(array: &ArrayRef, target: &Field, path: &str, reject: &mut [bool], reasons: &mut Reasons) -> Result<ArrayRef, String> {
    if array.data_type() == target.data_type() {
        return Ok(array.clone());
    }
    match target.data_type() {
        DataType::Struct(fields) => coerce_struct(array, fields, target, path, reject, reasons),
        DataType::List(element) => coerce_list(array, element, target, path, reject, reasons),
        DataType::Map(entries, sorted) => coerce_map(array, entries, *sorted, target, path, reject, reasons),
        _ => Ok(coerce_primitive(array, target, path, reject, reasons)),
    }
}

/// Rejects every row that has a value: the types cannot meet.
fn incompatible(array: &ArrayRef, target: &Field, path: &str, reject: &mut [bool], reasons: &mut Reasons) -> ArrayRef {
    for (r, valid) in reject.iter_mut().zip(valid_mask(array.as_ref())) {
        *r |= valid;
    }
    if array.logical_null_count() < array.len() {
        reasons.add(format!("column `{path}`: Arrow type {} cannot be stored as {}", array.data_type(), target.data_type()));
    }
    new_null_array(target.data_type(), array.len())
}

fn coerce_primitive(array: &ArrayRef, target: &Field, path: &str, reject: &mut [bool], reasons: &mut Reasons) -> ArrayRef {
    let source = array.data_type();
    if source.is_nested() || !can_cast_types(source, target.data_type()) {
        return incompatible(array, target, path, reject, reasons);
    }
    let options = CastOptions { safe: true, ..Default::default() };
    let Ok(cast) = cast_with_options(array, target.data_type(), &options) else {
        return incompatible(array, target, path, reject, reasons);
    };
    let valid = valid_mask(array.as_ref());
    let cast_valid = valid_mask(cast.as_ref());
    let lossy = fractional_lost(array, &cast);
    let mut failed = false;
    for i in 0..array.len() {
        if valid[i] && (!cast_valid[i] || lossy.as_ref().is_some_and(|l| l[i])) {
            reject[i] = true;
            failed = true;
        }
    }
    if failed {
        reasons.add(format!("column `{path}`: values that cannot be converted from {source} to {}", target.data_type()));
    }
    cast
}

/// For float → integer casts, which truncate silently: the slots whose value changed.
fn fractional_lost(source: &ArrayRef, cast: &ArrayRef) -> Option<Vec<bool>> {
    if !(source.data_type().is_floating() && cast.data_type().is_integer()) {
        return None;
    }
    let options = CastOptions::default();
    let before = cast_with_options(source, &DataType::Float64, &options).ok()?;
    let after = cast_with_options(cast, &DataType::Float64, &options).ok()?;
    let (before, after) = (before.as_primitive::<Float64Type>(), after.as_primitive::<Float64Type>());
    Some((0..source.len()).map(|i| before.is_valid(i) && after.is_valid(i) && before.value(i) != after.value(i)).collect())
}

fn coerce_struct(
    array: &ArrayRef,
    fields: &Fields,
    target: &Field,
    path: &str,
    reject: &mut [bool],
    reasons: &mut Reasons,
) -> Result<ArrayRef, String> {
    let Some(source) = array.as_struct_opt() else {
        return Ok(incompatible(array, target, path, reject, reasons));
    };
    let valid = valid_mask(source);
    let mut children = Vec::with_capacity(fields.len());
    for field in fields {
        let child = match source.column_by_name(field.name()) {
            Some(child) => {
                let mut child_reject = vec![false; child.len()];
                let out = coerce(child, field, &format!("{path}.{}", field.name()), &mut child_reject, reasons)?;
                for i in 0..reject.len() {
                    reject[i] |= valid[i] && child_reject[i];
                }
                out
            }
            None => new_null_array(field.data_type(), source.len()),
        };
        children.push(child);
    }
    let out = StructArray::try_new(fields.clone(), children, source.nulls().cloned()).map_err(|e| format!("column `{path}`: {e}"))?;
    Ok(Arc::new(out))
}

/// Marks a row rejected when one of the child slots in its range was.
fn reject_ranges(offsets: &[i32], valid: &[bool], child_reject: &[bool], reject: &mut [bool]) {
    for row in 0..reject.len() {
        let (start, end) = (offsets[row] as usize, offsets[row + 1] as usize);
        reject[row] |= valid[row] && child_reject[start..end].iter().any(|r| *r);
    }
}

fn coerce_list(
    array: &ArrayRef,
    element: &FieldRef,
    target: &Field,
    path: &str,
    reject: &mut [bool],
    reasons: &mut Reasons,
) -> Result<ArrayRef, String> {
    // Bring any list layout to List (i32 offsets) with the source's own element type first.
    let as_list = match array.data_type() {
        DataType::List(_) => Some(array.clone()),
        DataType::LargeList(e) | DataType::ListView(e) | DataType::LargeListView(e) | DataType::FixedSizeList(e, _) => {
            cast_with_options(array, &DataType::List(e.clone()), &CastOptions::default()).ok()
        }
        _ => None,
    };
    let Some(source) = as_list.as_ref().and_then(|a| a.as_list_opt::<i32>()) else {
        return Ok(incompatible(array, target, path, reject, reasons));
    };
    let values = source.values();
    let mut child_reject = vec![false; values.len()];
    let new_values = coerce(values, element, &format!("{path}[]"), &mut child_reject, reasons)?;
    reject_ranges(source.offsets(), &valid_mask(source), &child_reject, reject);
    let out = ListArray::try_new(element.clone(), source.offsets().clone(), new_values, source.nulls().cloned())
        .map_err(|e| format!("column `{path}`: {e}"))?;
    Ok(Arc::new(out))
}

fn coerce_map(
    array: &ArrayRef,
    entries: &FieldRef,
    sorted: bool,
    target: &Field,
    path: &str,
    reject: &mut [bool],
    reasons: &mut Reasons,
) -> Result<ArrayRef, String> {
    let (Some(source), DataType::Struct(kv)) = (array.as_map_opt(), entries.data_type()) else {
        return Ok(incompatible(array, target, path, reject, reasons));
    };
    let (Some(key_field), Some(value_field)) = (kv.first(), kv.get(1)) else {
        return Ok(incompatible(array, target, path, reject, reasons));
    };
    // Entries are matched by position: Arrow and Iceberg name the key and value differently.
    let mut child_reject = vec![false; source.entries().len()];
    let keys = coerce(source.keys(), key_field, &format!("{path}.key"), &mut child_reject, reasons)?;
    let values = coerce(source.values(), value_field, &format!("{path}.value"), &mut child_reject, reasons)?;
    reject_ranges(source.offsets(), &valid_mask(source), &child_reject, reject);
    let new_entries = StructArray::try_new(kv.clone(), vec![keys, values], None).map_err(|e| format!("column `{path}`: {e}"))?;
    let out = MapArray::try_new(entries.clone(), source.offsets().clone(), new_entries, source.nulls().cloned(), sorted)
        .map_err(|e| format!("column `{path}`: {e}"))?;
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use arrow_array::{Int32Array, Int64Array};
    use iceberg::arrow::schema_to_arrow_schema;

    use super::*;

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).expect("test batch")
    }

    fn table_arrow(schema: &Schema) -> ArrowSchemaRef {
        Arc::new(schema_to_arrow_schema(schema).expect("arrow schema"))
    }

    #[test]
    fn policy_widens_numbers_and_keeps_the_rest() {
        let arrow = ArrowSchema::new(vec![
            Field::new("i", DataType::Int16, true),
            Field::new("f", DataType::Float32, true),
            Field::new("ts", DataType::Timestamp(arrow_schema::TimeUnit::Nanosecond, Some("UTC".into())), true),
            Field::new("n", DataType::Null, true),
        ]);
        let schema = new_table_schema(&arrow, &[]).expect("table schema");
        let types: Vec<String> = schema.as_struct().fields().iter().map(|f| f.field_type.to_string()).collect();
        assert_eq!(types, ["long", "double", "timestamptz"]);
    }

    #[test]
    fn uncoercible_values_reject_their_rows() {
        let schema = new_table_schema(&ArrowSchema::new(vec![Field::new("n", DataType::Int64, true)]), &[]).expect("table schema");
        let input = batch(vec![("n", Arc::new(StringArray::from(vec![Some("1"), Some("abc"), None])) as ArrayRef)]);
        let out = conform(&input, &table_arrow(&schema)).expect("conform");
        assert_eq!(out.rejected_rows, 1);
        assert_eq!(out.batch.num_rows(), 2);
        let n = out.batch.column(0).as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(n.value(0), 1);
        assert!(n.is_null(1));
    }

    #[test]
    fn fractions_are_not_truncated_into_integers() {
        let schema = new_table_schema(&ArrowSchema::new(vec![Field::new("n", DataType::Int64, true)]), &[]).expect("table schema");
        let input = batch(vec![("n", Arc::new(arrow_array::Float64Array::from(vec![2.0, 2.5])) as ArrayRef)]);
        let out = conform(&input, &table_arrow(&schema)).expect("conform");
        assert_eq!(out.rejected_rows, 1);
    }

    #[test]
    fn missing_columns_become_null_and_ints_widen() {
        let arrow = ArrowSchema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)]);
        let schema = new_table_schema(&arrow, &[]).expect("table schema");
        let input = batch(vec![("a", Arc::new(Int32Array::from(vec![7])) as ArrayRef)]);
        let out = conform(&input, &table_arrow(&schema)).expect("conform");
        assert_eq!(out.rejected_rows, 0);
        assert_eq!(out.batch.column(0).as_ref(), &Int64Array::from(vec![7]) as &dyn Array);
        assert!(out.batch.column(1).is_null(0));
    }

    #[test]
    fn nested_additions_are_found() {
        let inner = Fields::from(vec![Field::new("x", DataType::Int64, true)]);
        let arrow = ArrowSchema::new(vec![Field::new("s", DataType::Struct(inner), true)]);
        let schema = new_table_schema(&arrow, &[]).expect("table schema");
        let wider = Fields::from(vec![Field::new("x", DataType::Int64, true), Field::new("y", DataType::Utf8, true)]);
        let batch_schema = ArrowSchema::new(vec![Field::new("s", DataType::Struct(wider), true), Field::new("t", DataType::Boolean, true)]);
        let additions = missing_fields(&batch_schema, &schema).expect("missing fields");
        let described: Vec<String> = additions.iter().map(Addition::describe).collect();
        assert_eq!(described, ["added column `s.y` (string)", "added column `t` (boolean)"]);
        let nested = Addition { parent: None, name: "m".into(), field_type: map_of_lists() };
        assert_eq!(nested.describe(), "added column `m` (map<string, list<long>>)");
    }

    fn map_of_lists() -> Type {
        let list = Type::List(ListType::new(Arc::new(NestedField::list_element(3, Type::Primitive(PrimitiveType::Long), false))));
        Type::Map(MapType::new(
            Arc::new(NestedField::map_key_element(1, Type::Primitive(PrimitiveType::String))),
            Arc::new(NestedField::map_value_element(2, list, false)),
        ))
    }

    #[test]
    fn ids_must_keep_their_meaning() {
        let two = ArrowSchema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8, true)]);
        let written = new_table_schema(&two, &[]).expect("table schema");
        let swapped = ArrowSchema::new(vec![Field::new("b", DataType::Utf8, true), Field::new("a", DataType::Int64, true)]);
        let renumbered = new_table_schema(&swapped, &[]).expect("table schema");
        let three = ArrowSchema::new(vec![
            Field::new("a", DataType::Int64, true),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Boolean, true),
        ]);
        let grown = new_table_schema(&three, &[]).expect("table schema");
        assert!(ids_compatible(&written, &grown));
        assert!(!ids_compatible(&written, &renumbered));
        assert!(!ids_compatible(&grown, &written));
    }

    #[test]
    fn struct_into_long_rejects_rows() {
        let schema = new_table_schema(&ArrowSchema::new(vec![Field::new("n", DataType::Int64, true)]), &[]).expect("table schema");
        let inner =
            StructArray::from(vec![(Arc::new(Field::new("x", DataType::Int64, true)), Arc::new(Int64Array::from(vec![1, 2])) as ArrayRef)]);
        let input = batch(vec![("n", Arc::new(inner) as ArrayRef)]);
        let out = conform(&input, &table_arrow(&schema)).expect("conform");
        assert_eq!(out.rejected_rows, 2);
    }
}
