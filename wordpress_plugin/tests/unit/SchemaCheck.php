<?php
/**
 * A small validator for the part of JSON Schema that contracts/order.schema.json uses (type,
 * const, enum, required, properties, additionalProperties false, boolean schemas, items,
 * min/maxItems, minimum/maximum, min/maxLength, pattern, anyOf, allOf, if/then/else). Formats
 * are not checked here: full draft 2020-12 validation, formats included, is done from Python
 * with jsonschema (tests/test_plugin_contract.py).
 *
 * @package TAP_Order_Logger\Tests
 */

// phpcs:disable

final class SchemaCheck {

	/**
	 * @param mixed      $value  Decoded with assoc arrays, floats kept.
	 * @param array|bool $schema Schema (true: anything, false: nothing).
	 * @return string[] errors, empty when valid
	 */
	public static function errors( $value, $schema, $where = '$' ) {
		if ( true === $schema ) {
			return array();
		}
		if ( false === $schema ) {
			return array( "$where: not allowed" );
		}
		$errors = array();
		if ( isset( $schema['type'] ) && ! self::has_type( $value, $schema['type'] ) ) {
			return array( "$where: expected {$schema['type']}, got " . gettype( $value ) );
		}
		if ( array_key_exists( 'const', $schema ) && $value !== $schema['const'] ) {
			$errors[] = "$where: expected constant " . json_encode( $schema['const'] );
		}
		if ( isset( $schema['enum'] ) && ! in_array( $value, $schema['enum'], true ) ) {
			$errors[] = "$where: not one of " . json_encode( $schema['enum'] );
		}
		if ( is_string( $value ) ) {
			$length = mb_strlen( $value, 'UTF-8' );
			if ( isset( $schema['minLength'] ) && $length < $schema['minLength'] ) {
				$errors[] = "$where: shorter than {$schema['minLength']}";
			}
			if ( isset( $schema['maxLength'] ) && $length > $schema['maxLength'] ) {
				$errors[] = "$where: longer than {$schema['maxLength']}";
			}
			if ( isset( $schema['pattern'] ) && 1 !== preg_match( '/' . str_replace( '/', '\/', $schema['pattern'] ) . '/u', $value ) ) {
				$errors[] = "$where: does not match {$schema['pattern']}";
			}
		}
		if ( is_int( $value ) || is_float( $value ) ) {
			if ( isset( $schema['minimum'] ) && $value < $schema['minimum'] ) {
				$errors[] = "$where: below {$schema['minimum']}";
			}
			if ( isset( $schema['maximum'] ) && $value > $schema['maximum'] ) {
				$errors[] = "$where: above {$schema['maximum']}";
			}
		}
		// Object keywords apply to objects whether or not the (sub)schema names the type, as in
		// the schema's if/then/else branches.
		if ( self::has_type( $value, 'object' ) ) {
			foreach ( $schema['required'] ?? array() as $key ) {
				if ( ! array_key_exists( $key, $value ) ) {
					$errors[] = "$where: missing $key";
				}
			}
			foreach ( $value as $key => $child ) {
				if ( isset( $schema['properties'] ) && array_key_exists( $key, $schema['properties'] ) ) {
					$errors = array_merge( $errors, self::errors( $child, $schema['properties'][ $key ], "$where.$key" ) );
				} elseif ( false === ( $schema['additionalProperties'] ?? true ) ) {
					$errors[] = "$where: unexpected property $key";
				}
			}
		}
		if ( 'array' === ( $schema['type'] ?? null ) ) {
			if ( isset( $schema['minItems'] ) && count( $value ) < $schema['minItems'] ) {
				$errors[] = "$where: fewer than {$schema['minItems']} items";
			}
			if ( isset( $schema['maxItems'] ) && count( $value ) > $schema['maxItems'] ) {
				$errors[] = "$where: more than {$schema['maxItems']} items";
			}
			foreach ( $value as $i => $child ) {
				$errors = array_merge( $errors, self::errors( $child, $schema['items'] ?? array(), "{$where}[$i]" ) );
			}
		}
		if ( isset( $schema['anyOf'] ) ) {
			$any = false;
			foreach ( $schema['anyOf'] as $branch ) {
				$any = $any || array() === self::errors( $value, $branch, $where );
			}
			if ( ! $any ) {
				$errors[] = "$where: matches none of anyOf";
			}
		}
		foreach ( $schema['allOf'] ?? array() as $i => $part ) {
			$errors = array_merge( $errors, self::errors( $value, $part, "$where(allOf $i)" ) );
		}
		if ( array_key_exists( 'if', $schema ) ) {
			$branch = array() === self::errors( $value, $schema['if'], $where ) ? 'then' : 'else';
			if ( array_key_exists( $branch, $schema ) ) {
				$errors = array_merge( $errors, self::errors( $value, $schema[ $branch ], "$where($branch)" ) );
			}
		}
		return $errors;
	}

	private static function has_type( $value, $type ) {
		switch ( $type ) {
			case 'object':
				return is_array( $value ) && ( array() === $value || array_keys( $value ) !== range( 0, count( $value ) - 1 ) );
			case 'array':
				return is_array( $value ) && ( array() === $value || array_keys( $value ) === range( 0, count( $value ) - 1 ) );
			case 'integer':
				return is_int( $value );
			case 'number':
				return is_int( $value ) || is_float( $value );
			case 'string':
				return is_string( $value );
			case 'boolean':
				return is_bool( $value );
			default:
				return false;
		}
	}
}
